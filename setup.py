# The native extension is declared here because cffi_modules has no pyproject form.
from setuptools import setup

setup(cffi_modules=["native/build_ffi.py:ffibuilder"])
