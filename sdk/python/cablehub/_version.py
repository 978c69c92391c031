# The package's version. This checkout says 0.1.0; `make sdk-package-python`
# builds from a copy whose line below carries tools/sdk-version's number.
__version__ = "0.1.0"
