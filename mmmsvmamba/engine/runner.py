"""mmengine's Runner, able to resume from and load its own checkpoints under torch >= 2.6."""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .checkpoint_globals import mmengine_checkpoint_globals


@RUNNERS.register_module()
class MSVMambaRunner(Runner):
    """:class:`mmengine.runner.Runner` whose checkpoint reading (``load_from``, ``--resume``, test checkpoints)
    accepts the data types mmengine itself writes, with torch's weights-only check left on.

    Select it with ``runner_type = 'MSVMambaRunner'`` in a config (all configs of this package do), so it is also
    used by mmdet's and mmseg's own ``tools/train.py``. See :mod:`mmmsvmamba.engine.checkpoint_globals`.
    """

    def load_checkpoint(self, filename, map_location='cpu', strict=False, revise_keys=[(r'^module.', '')]):
        with mmengine_checkpoint_globals():
            return super().load_checkpoint(filename, map_location=map_location, strict=strict,
                                           revise_keys=revise_keys)
