"""Running exported models in ONNX Runtime (CPU): sessions and the inference step a benchmark times.

    session = build_session('msvmamba_t.onnx', threads=2)
    outputs = run(session, images)                 # images: torch tensor or numpy array, (B, 3, H, W) float32
    step = ort_infer_step(session, images)         # step() runs one inference; a benchmark times calls of it

Stock onnxruntime runs the files: the scan ops are translated into standard ONNX operators, so no custom-op
library is registered.
"""
import ctypes
import weakref
from typing import Callable, Optional, Union

import numpy as np
import onnxruntime as ort
import torch

__all__ = ['build_session', 'run', 'ort_infer_step', 'compare_with_torch']


def build_session(path_or_bytes: Union[str, bytes], threads: Optional[int] = None,
                  spinning: bool = True) -> ort.InferenceSession:
    """A CPU inference session with all graph optimisations and ``threads`` intra-op threads.

    Args:
        path_or_bytes: an ``.onnx`` file or its bytes.
        threads: intra-op threads; None takes ``torch.get_num_threads()``, so a benchmark gives both runtimes the
            same number.
        spinning: let idle worker threads spin (onnxruntime's default; lower latency). A benchmark that
            alternates with PyTorch on the same cores turns it off, so the spinning threads do not steal the
            cores from the PyTorch runs in between.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    _use_arena_that_grows_by_requests(options)
    session = ort.InferenceSession(path_or_bytes, options, providers=['CPUExecutionProvider'])
    _return_freed_heap()
    return session


_ARENA_REGISTERED = False


def _use_arena_that_grows_by_requests(options: ort.SessionOptions) -> None:
    """Let the session allocate from one CPU arena of this process that grows by what is requested
    (``kSameAsRequested``) instead of onnxruntime's default, doubling.

    From its second run at a shape, onnxruntime allocates the shape's planned tensors as one block; the tensors of
    the scans' ``Loop`` bodies are allocated beside it. With the default arena the steady state held two such
    blocks: MSVMamba-T1 (tiny_v1) at batch 8, 670 MB over the process from the third run on, 1.2x PyTorch's peak;
    466 MB with this arena, at the same speed. It costs elsewhere: the Mask R-CNN at 800 x 1333 peaks at 1,087
    instead of 976 MB (docs/deploy.md, "Peak memory").
    """
    global _ARENA_REGISTERED
    if not _ARENA_REGISTERED:
        cpu = ort.OrtMemoryInfo('Cpu', ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        grow_by_request = 1  # ArenaExtendStrategy::kSameAsRequested; -1 keeps onnxruntime's default elsewhere
        ort.create_and_register_allocator(cpu, ort.OrtArenaCfg(0, grow_by_request, -1, -1))
        _ARENA_REGISTERED = True
    options.add_session_config_entry('session.use_env_allocators', '1')


def _return_freed_heap() -> None:
    """Hand the heap memory that creating a session freed back to the operating system (glibc's ``malloc_trim``).

    Session creation copies every weight out of the parsed file and reorders the convolution weights, then frees
    the intermediate copies; glibc keeps freed heap in the process. MSVMamba-B (357 MB of weights): 1,158 MB
    resident after creating the session, 421 MB after this call (docs/deploy.md, "Peak memory"). With another C
    library this does nothing: its allocator decides.
    """
    try:  # the C library already loaded into this process (ctypes.util.find_library would start a subprocess)
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


# session -> the input shapes it has run: onnxruntime plans a shape's memory on its first run (below)
_SHAPES_RUN = weakref.WeakKeyDictionary()


def _run_options(session: ort.InferenceSession, feed: dict) -> Optional[ort.RunOptions]:
    """Options for one run of ``feed``: the first run at an input shape hands the memory arena's free regions back.

    On its first run at a shape, onnxruntime allocates each intermediate tensor from its arena and records the
    pattern; from the second run on, it allocates the recorded tensors as one block. The first run's regions stay
    in the arena, free but too fragmented to hold that block, so the block came on top of them: MSVMamba-B at
    batch 8 peaked at 1,119 MB over the process before, 820 MB when the first run ends by shrinking the arena
    (docs/deploy.md, "Peak memory"). Later runs keep the arena: shrinking it every run would fault the block's
    pages in again each time.
    """
    shapes = tuple(value.shape for value in feed.values())
    seen = _SHAPES_RUN.setdefault(session, set())
    if shapes in seen:
        return None
    seen.add(shapes)
    options = ort.RunOptions()
    options.add_run_config_entry('memory.enable_memory_arena_shrinkage', 'cpu:0')
    return options


def _feed(session: ort.InferenceSession, images) -> dict:
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().contiguous().numpy()
    return {session.get_inputs()[0].name: np.ascontiguousarray(images, dtype=np.float32)}


def run(session: ort.InferenceSession, images) -> list:
    """The outputs (numpy arrays, in the file's output order) for one (B, 3, H, W) batch of images."""
    feed = _feed(session, images)
    return session.run(None, feed, _run_options(session, feed))


def ort_infer_step(session_or_path, images, threads: Optional[int] = None,
                   spinning: bool = True) -> Callable[[], list]:
    """A no-argument function that runs one onnxruntime inference of ``images`` and returns its outputs.

    ``session_or_path`` is a session from :func:`build_session` or a path (a session is then built with
    ``threads`` and ``spinning``). The input is converted once, here, so the step times the inference alone.
    """
    session = session_or_path
    if not isinstance(session, ort.InferenceSession):
        session = build_session(session_or_path, threads, spinning)
    feed = _feed(session, images)

    def step():
        return session.run(None, feed, _run_options(session, feed))
    return step


def compare_with_torch(model: torch.nn.Module, session_or_path, images: torch.Tensor) -> dict:
    """Output name -> how far onnxruntime is from ``model`` in PyTorch on ``images``.

    Float outputs: max |ort - torch| / max |torch|. Integer outputs (a segmentation mask): the fraction of
    elements that differ.
    """
    session = session_or_path
    if not isinstance(session, ort.InferenceSession):
        session = build_session(session_or_path)
    with torch.no_grad():
        expected = model.eval()(images)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    names = [o.name for o in session.get_outputs()]
    errors = {}
    for name, got, ref in zip(names, run(session, images), expected):
        ref = ref.detach().cpu().numpy()
        if got.shape != ref.shape:
            raise AssertionError(f'{name}: onnxruntime gave shape {got.shape}, PyTorch {ref.shape}')
        if np.issubdtype(ref.dtype, np.floating):
            errors[name] = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))
        else:
            errors[name] = float((got != ref).mean())
    return errors
