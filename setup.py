"""The C part of gradcmp: the strict CSV reader's fast path (gradcmp/_fastcsv.c).

Optional: where it cannot be compiled, gradcmp installs without it and reads CSV files with
the pure-Python reader (the same rules and messages, several times slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gradcmp._fastcsv",
            ["gradcmp/_fastcsv.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
