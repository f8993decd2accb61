"""A gunicorn-like base worker: its init_signals installs handle_usr1, which counts reopens."""

import signal


class Worker(object):
    reopened = 0

    def init_signals(self):
        signal.signal(signal.SIGUSR1, self.handle_usr1)

    def handle_usr1(self, sig, frame):
        self.reopened += 1
