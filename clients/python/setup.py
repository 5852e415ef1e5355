"""Build hook: generates the gRPC stubs from the repository's proto/ into the wheel.

`pip install clients/python` runs build_py, which runs grpcio-tools' protoc over
../../proto/nexadb/v1/*.proto (or $NEXADB_PROTO_DIR) and writes the modules as the
subpackage nexadb.v1 (the proto package nexadb.v1 maps to that Python path). No
generated code is kept in the source tree.
"""
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
GOOGLEAPIS = "/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis"


def proto_root() -> Path:
    root = Path(os.environ.get("NEXADB_PROTO_DIR", HERE.parent.parent / "proto"))
    if not (root / "nexadb/v1").is_dir():
        raise SystemExit(f"nexadb: no protos at {root}/nexadb/v1; set NEXADB_PROTO_DIR")
    return root


def googleapis_include() -> list:
    """google/api/annotations.proto, which our protos import: Debian's copy, else the one
    shipped inside the googleapis-common-protos wheel if it is importable."""
    if Path(GOOGLEAPIS, "google/api/annotations.proto").exists():
        return [f"-I{GOOGLEAPIS}"]
    try:
        import google.api  # noqa: F401  (googleapis-common-protos ships the .proto files)
        base = Path(google.api.__path__[0]).parent.parent
        if (base / "google/api/annotations.proto").exists():
            return [f"-I{base}"]
    except ImportError:
        pass
    raise SystemExit("nexadb: google/api/annotations.proto not found "
                     "(install Debian golang-github-grpc-ecosystem-grpc-gateway-dev)")


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        import grpc_tools
        from grpc_tools import protoc

        root = proto_root()
        out = Path(self.build_lib)
        protos = sorted(str(p.relative_to(root)) for p in (root / "nexadb/v1").glob("*.proto"))
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        args = ["protoc", f"-I{root}", *googleapis_include(), f"-I{well_known}",
                f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *protos]
        if protoc.main(args) != 0:
            raise SystemExit("nexadb: protoc failed generating the stubs")
        (out / "nexadb/v1/__init__.py").write_text('"""Generated from proto/nexadb/v1 at build time."""\n')


setup(cmdclass={"build_py": BuildWithStubs})
