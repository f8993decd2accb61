"""One way to patch a class of uvicorn's, to tell it is patched, and to undo it.

`replace(cls, name, make)` sets cls.name to make(the original), marked with the attribute
`uvicorn_usr1_patch` and holding the original as `__wrapped__` (functools.wraps); a name the
class did not have gets make(None) and is deleted again by unpatch_all(). Plain functions:
no dependency, and a reader sees the whole wrapper (gunicorn's Logger, patched by the carried
code of atomic_reopen, is marked the same way).
"""

import functools

_patched = []  # (class, name, original or None), in order, for unpatch_all()


def is_patched(cls, name):
    return getattr(vars(cls).get(name), "uvicorn_usr1_patch", False)


def replace(cls, name, make):
    """Patch cls.name once; returns what is there now."""
    if is_patched(cls, name):
        return vars(cls)[name]
    original = vars(cls).get(name)
    new = make(original)
    if original is not None:
        functools.update_wrapper(new, original)
    new.uvicorn_usr1_patch = True
    setattr(cls, name, new)
    _patched.append((cls, name, original))
    return new


def unpatch_all():
    """Restore every class patched in this process, last patched first."""
    while _patched:
        cls, name, original = _patched.pop()
        if original is None:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
