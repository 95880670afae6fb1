"""end_distributed: the tools' last step leaves no process group behind, and is a no-op without one."""
import torch.distributed as dist

from mmmsvmamba.engine.launch import end_distributed


def test_end_distributed_tears_the_process_group_down(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    assert dist.is_initialized()
    end_distributed()
    assert not dist.is_initialized()
    end_distributed()  # nothing left to end
