"""Two uvicorn Servers on one loop (asyncio.gather), as applications serve two apps: SIGUSR1 stays
handled while either serves, and is restored once both are done. Prints JSON."""

import asyncio
import json
import signal

import uvicorn


async def app(scope, receive, send):
    pass


async def main():
    seen = {}
    first = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    second = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))

    async def stop_one_then_the_other():
        while not (first.started and second.started):
            await asyncio.sleep(0.01)
        seen["both"] = type(signal.getsignal(signal.SIGUSR1)).__name__
        first.should_exit = True
        while not done_first.done():
            await asyncio.sleep(0.01)
        seen["second_alone"] = type(signal.getsignal(signal.SIGUSR1)).__name__
        second.should_exit = True

    done_first = asyncio.ensure_future(first.serve())
    await asyncio.gather(done_first, second.serve(), stop_one_then_the_other())
    seen["after_is_default"] = signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    print(json.dumps(seen))


asyncio.run(main())
