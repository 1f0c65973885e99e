"""The package as users get it: a light ``import archgraph``, names loaded on first use, and a
wheel that works wherever pip puts it (``--target`` or a fresh environment)."""

import email.parser
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import archgraph

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "archgraph" / "space_files").glob("*.toml"))
HEAVY = ("torch", "matplotlib", "torch_geometric", "skopt", "ray", "sklearn", "scipy", "networkx", "numpy")


def test_import_loads_no_heavy_library():
    probe = f"import sys, archgraph\nprint(*sorted({{m.partition('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_public_names_load_on_first_use():
    from archgraph.graph import ArchGraph

    assert archgraph.ArchGraph is ArchGraph
    assert all(callable(f) for f in (archgraph.plot.draw_graph, archgraph.mutate.add_edge, archgraph.ops.check))
    assert set(archgraph.__all__) <= set(dir(archgraph))
    with pytest.raises(AttributeError, match="module 'archgraph' has no attribute 'ArchGrpah'"):
        archgraph.ArchGrpah
    with pytest.raises(ImportError, match="cannot import name 'nope' from 'archgraph'"):
        from archgraph import nope  # noqa: F401


def run(*command, env=None, cwd=None) -> str:
    """Run ``command``; its stdout, or a failure that shows everything it printed."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, cwd=cwd)
    if done.returncode:
        pytest.fail(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def pip(*args) -> str:
    return run(sys.executable, "-m", "pip", "--disable-pip-version-check", *args)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built by pip with the installed setuptools (no download), from
    a copy so that the checkout gets no build/ folder."""
    pytest.importorskip("setuptools", minversion="77")  # pyproject's build requirement
    tmp = tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp / name)
    shutil.copytree(ROOT / "archgraph", tmp / "archgraph", ignore=shutil.ignore_patterns("__pycache__"))
    pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", tmp / "dist", tmp)
    (built,) = (tmp / "dist").glob("archgraph-*.whl")
    return built


def test_wheel_carries_the_spaces_types_licence_and_version(wheel):
    version = archgraph.__version__
    assert wheel.name.startswith(f"archgraph-{version}-")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = email.parser.Parser().parsestr(z.read(f"archgraph-{version}.dist-info/METADATA").decode())
    assert sorted(n.removeprefix("archgraph/space_files/").removesuffix(".toml") for n in names
                  if n.startswith("archgraph/space_files/")) == SHIPPED
    assert {"archgraph/py.typed", f"archgraph-{version}.dist-info/licenses/LICENSE"} <= names
    assert (metadata["Version"], metadata["License-Expression"]) == (version, "MIT")
    assert 'ray>=2.9; extra == "ray"' in metadata.get_all("Requires-Dist")


def check_install(archgraph_command: list, python: Path, env: dict, tmp_path: Path, where: Path) -> None:
    """The installed archgraph is the one under ``where``, lists the shipped spaces and runs a
    one-trial search."""
    located = run(python, "-c", "import archgraph; print(archgraph.__file__)", env=env, cwd=tmp_path)
    assert Path(located.strip()).is_relative_to(where)
    assert run(*archgraph_command, "--version", env=env, cwd=tmp_path) == f"archgraph {archgraph.__version__}\n"
    listed = run(*archgraph_command, "spaces", env=env, cwd=tmp_path)
    assert [line.split()[0] for line in listed.splitlines()] == SHIPPED
    out = run(*archgraph_command, "search", "--trials", "1", "--epochs", "1", "--dataset", "digits",
              "--out", tmp_path / "run", "--no-progress", env=env, cwd=tmp_path)
    assert "1 trials told" in out
    assert (tmp_path / "run" / "best_arch.json").is_file() and (tmp_path / "run" / "store.sqlite").is_file()


def clean_env() -> dict:
    """This process's environment without what would point Python at the checkout or at other spaces."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ARCHGRAPH_SPACES")}


def test_wheel_installed_with_target_finds_its_spaces_and_searches(wheel, tmp_path):
    target = tmp_path / "target"
    pip("install", "--no-deps", "--target", target, wheel)
    env = {**clean_env(), "PYTHONPATH": str(target)}
    check_install([sys.executable, "-m", "archgraph.cli"], Path(sys.executable), env, tmp_path, target)


def test_wheel_installed_in_a_fresh_venv_finds_its_spaces_and_searches(wheel, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    # the new environment sees this one's packages (torch and the rest) instead of downloading them again
    ours = sysconfig.get_paths()
    (site / "_archgraph_test_deps.pth").write_text("\n".join(dict.fromkeys([ours["purelib"], ours["platlib"]])) + "\n")
    # --ignore-installed: never touch the archgraph of this environment, which the new one also sees
    pip("--python", python, "install", "--no-deps", "--ignore-installed", wheel)
    check_install([venv / "bin" / "archgraph"], python, clean_env(), tmp_path, site)
