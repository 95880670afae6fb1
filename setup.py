"""Build of mmmsvmamba and its compiled selective-scan ops (csrc/, see docs/ops.md).

Extensions, loaded by mmmsvmamba/ops/compiled.py:

* ``mmmsvmamba._C``: the operator schemas and the CPU kernels. Always built.
* ``mmmsvmamba._C_cuda``: the CUDA kernels. Built when torch has CUDA and nvcc is found (``CUDA_HOME``, default
  /usr/local/cuda). ``MMMSVMAMBA_WITH_CUDA=0`` skips it; ``=1`` makes a missing toolkit an error.
* ``mmmsvmamba._C_emulated``: the same CUDA kernels compiled for the host against the emulated CUDA device of
  csrc/emulated_cuda/, for tests (library ``mmmsvmamba_emulated``, CPU tensors). Built only with
  ``MMMSVMAMBA_WITH_EMULATED=1`` (the development environment sets it); ``MMMSVMAMBA_EMULATED_SANITIZE=undefined``
  builds it with UBSan (``make test-ubsan``).

``MMMSVMAMBA_WITH_OPS=0`` builds no extension at all: the package then scans on its PyTorch path (with a warning
where a kernel was wanted). For tests of the installed Python layout and package data, which need no compiler
(tests/integration/test_installed_package.py).

Environment: ``TORCH_CUDA_ARCH_LIST`` (default '8.0;8.6;8.9;9.0;12.0'), ``MAX_JOBS`` (parallel compile jobs).
Install for development with ``pip install --no-build-isolation --no-deps -e .`` (tools/setup_env.sh does).
"""
import glob
import os

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join('csrc', 'selective_scan')
DEFAULT_CUDA_HOME = '/usr/local/cuda'
DEFAULT_ARCH_LIST = '8.0;8.6;8.9;9.0;12.0'


def _requirements(name):
    with open(os.path.join(ROOT, 'requirements', name)) as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


def _want_cuda(torch, cuda_home):
    """Whether to build the CUDA extension; raises when MMMSVMAMBA_WITH_CUDA=1 asks for it and it cannot be."""
    flag = os.environ.get('MMMSVMAMBA_WITH_CUDA', '').strip()
    if flag == '0':
        return False
    missing = []
    if torch.version.cuda is None:
        missing.append(f'torch {torch.__version__} is a CPU-only build')
    if cuda_home is None or not os.path.exists(os.path.join(cuda_home, 'bin', 'nvcc')):
        missing.append(f'nvcc was not found (CUDA_HOME={cuda_home}; set CUDA_HOME to the CUDA toolkit)')
    if missing and flag == '1':
        raise RuntimeError('MMMSVMAMBA_WITH_CUDA=1 but the CUDA extension cannot be built: ' + '; '.join(missing))
    return not missing


def _emulated_extension(CppExtension, cxx_flags):
    """The CUDA kernels on the emulated device (csrc/emulated_cuda/), or None unless MMMSVMAMBA_WITH_EMULATED=1."""
    if os.environ.get('MMMSVMAMBA_WITH_EMULATED', '').strip() != '1':
        return None
    # -fvisibility=hidden: the host-compiled kernels carry the mangled names of the real CUDA build's kernels;
    # hidden, neither library can bind the other's. -fno-strict-aliasing: device code reinterprets element arrays as
    # vectors, which nvcc allows and GCC's type-based alias analysis would not.
    # -O2 -g0: the build time counts in CI (debug info alone costs 40% more); the kernels run fast enough at -O2.
    flags = [f for f in cxx_flags if not f.startswith('-O')] + [
        '-O2', '-g0', '-DMMMSVMAMBA_EMULATED_CUDA', '-fvisibility=hidden', '-fvisibility-inlines-hidden',
        '-fno-strict-aliasing', '-Wno-unknown-pragmas']
    link = []
    sanitize = os.environ.get('MMMSVMAMBA_EMULATED_SANITIZE', '').strip()
    if sanitize:
        if sanitize != 'undefined':
            raise RuntimeError(f'MMMSVMAMBA_EMULATED_SANITIZE={sanitize!r}: only "undefined" (UBSan) is supported; '
                               'AddressSanitizer would have to be preloaded into Python')
        flags = [f for f in flags if not f.startswith('-O') and f != '-g0'] + [
            '-O1', '-g', '-fsanitize=undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer']
        link = ['-fsanitize=undefined']
    return CppExtension('mmmsvmamba._C_emulated',
                        sources=[os.path.join('csrc', 'emulated_cuda', 'cuda_emulator.cpp')] +
                        sorted(glob.glob(os.path.join(CSRC, 'emulated', '*.cpp'))),
                        extra_compile_args={'cxx': flags}, extra_link_args=link)


def _extensions():
    if os.environ.get('MMMSVMAMBA_WITH_OPS', '').strip() == '0':
        return []
    # torch.utils.cpp_extension reads CUDA_HOME when imported and otherwise guesses /usr/local.
    if not (os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH')) and os.path.exists(
            os.path.join(DEFAULT_CUDA_HOME, 'bin', 'nvcc')):
        os.environ['CUDA_HOME'] = DEFAULT_CUDA_HOME
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    cxx_flags = ['-O3', '-std=c++20']
    extensions = [
        CppExtension('mmmsvmamba._C',
                     sources=[os.path.join(CSRC, 'selective_scan.cpp')] +
                     sorted(glob.glob(os.path.join(CSRC, 'cpu', '*.cpp'))),
                     # -fno-trapping-math: no FP-exception semantics, lets the compiler vectorise the selects of
                     # cpu/vec_math.h. -fopenmp: at::parallel_for is an OpenMP region compiled into the caller;
                     # without it the kernels run on one thread. The library it links is the libgomp.so.1 that
                     # torch has already loaded, so torch.set_num_threads governs both.
                     extra_compile_args={'cxx': cxx_flags + ['-fno-trapping-math', '-fopenmp']},
                     extra_link_args=['-fopenmp'])
    ]
    emulated = _emulated_extension(CppExtension, cxx_flags)
    if emulated is not None:
        extensions.append(emulated)
    if _want_cuda(torch, CUDA_HOME):
        os.environ.setdefault('TORCH_CUDA_ARCH_LIST', DEFAULT_ARCH_LIST)
        # torch's CUDA headers include cuBLAS / cuSPARSE headers, which pip's CUDA runtime keeps here
        nvidia_include = os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), 'nvidia', 'cu13', 'include')
        extensions.append(
            CUDAExtension('mmmsvmamba._C_cuda',
                          sources=sorted(glob.glob(os.path.join(CSRC, 'cuda', '*.cu'))),
                          include_dirs=[nvidia_include] if os.path.isdir(nvidia_include) else [],
                          extra_compile_args={'cxx': cxx_flags, 'nvcc': ['-O3', '-std=c++20']}))
    return extensions


def _build_ext():
    from torch.utils.cpp_extension import BuildExtension
    return BuildExtension.with_options(use_ninja=True)


setup(
    name='mmmsvmamba',
    version='0.1.0',
    description='MSVMamba (multi-scale VMamba) backbone for OpenMMLab, with compiled selective-scan ops',
    packages=find_packages(include=['mmmsvmamba', 'mmmsvmamba.*']),
    # the published figures (mmmsvmamba.analysis.published) must read the same from an installed package
    package_data={'mmmsvmamba.analysis': ['metafile.yml', 'published_peers.yml']},
    python_requires='>=3.10',
    install_requires=_requirements('runtime.txt'),
    extras_require={'tests': _requirements('tests.txt')},
    ext_modules=_extensions(),
    cmdclass={'build_ext': _build_ext()},
    zip_safe=False,
)
