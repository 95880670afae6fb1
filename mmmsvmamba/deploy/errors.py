"""The one error type of :mod:`mmmsvmamba.deploy`, in a module of its own so that the export entry points
(``export.py``) and the model wrappers they build (``detector.py``) both raise it without importing each other."""


class DeployError(ValueError):
    """A request that cannot be exported as given (unknown arch, unsupported model type, missing file)."""
