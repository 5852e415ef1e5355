"""Build hook: the gRPC stubs, subpackage nexadb.v1, generated from the repository's proto/.

- `python -m build --sdist` writes them into the sdist, which is therefore self-contained:
  a wheel built from it (`pip install nexadb-X.tar.gz`) takes them as they are and needs no
  protos. Only an sdist holds nexadb/v1; the source tree never does.
- From the source tree (`pip install clients/python`, `python -m build --wheel`), build_py
  generates them into the wheel.
Either way grpcio-tools' protoc runs over ../../proto/nexadb/v1/*.proto (or $NEXADB_PROTO_DIR)
and writes the modules as nexadb.v1 (the proto package nexadb.v1 maps to that Python path).
"""
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
GOOGLEAPIS = "/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis"
IN_SDIST = (HERE / "nexadb/v1/__init__.py").exists()


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


def generate_stubs(out: Path):
    """Writes nexadb/v1/*_pb2*.py(i) and nexadb/v1/__init__.py under out."""
    import grpc_tools
    from grpc_tools import protoc

    root = proto_root()
    protos = sorted(str(p.relative_to(root)) for p in (root / "nexadb/v1").glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{root}", *googleapis_include(), f"-I{well_known}",
            f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("nexadb: protoc failed generating the stubs")
    (out / "nexadb/v1/__init__.py").write_text('"""Generated from proto/nexadb/v1 at build time."""\n')


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        if not IN_SDIST:
            generate_stubs(Path(self.build_lib))


class SdistWithStubs(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        generate_stubs(Path(base_dir))


setup(cmdclass={"build_py": BuildWithStubs, "sdist": SdistWithStubs},
      packages=["nexadb", "nexadb.v1"] if IN_SDIST else ["nexadb"])
