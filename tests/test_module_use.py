"""Snakemake conventions: the workflow used as a module from another project folder (set up as
`snakedeploy deploy-workflow` does, pointed at this checkout), `snakemake --report report.zip`,
the catalog file, the config's README, rule docstrings and ensure()."""

import re
import shutil
import subprocess
import zipfile

import pytest
import yaml

from conftest import ROOT, SNAKEMAKE
from cvgen import read_dataset
from cvgen.plan import validate_config

RULES = sorted((ROOT / "workflow/rules").glob("*.smk"))
# What `snakedeploy deploy-workflow <repo> <dest>` writes as dest/workflow/Snakefile, with the
# module's snakefile a local path instead of github(...): tests run without network.
DEPLOYED = """configfile: "config/config.yaml"


# declare {root} as a module
module cvgen:
    snakefile:
        "{root}/workflow/Snakefile"
    config:
        config


# use all rules from {root}
use rule * from cvgen
"""
# The project's own dataset, in its own config/config.yaml.
OWN_CONFIG = {
    "dataset": "ours",
    "seed": 4,
    "circuit": {"template": "qnn", "modes": 2, "layers": 1, "cutoff": 5},
    "n_circuits": 4,
    "samples_per_circuit": 12,
    "shard_size": 24,
    "batch_size": 8,
    "outputs": ["quad_x", "norm"],
    "split": {"train": 0.75, "test": 0.25},
}


def snakemake(project, *args, timeout=600):
    """Snakemake run inside the project folder, as its user would run it (no -s)."""
    command = [SNAKEMAKE, *args]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = tmp_path_factory.mktemp("project")
    (project / "workflow").mkdir()
    (project / "workflow/Snakefile").write_text(DEPLOYED.format(root=ROOT))
    shutil.copytree(ROOT / "config", project / "config")  # snakedeploy copies config/
    assert yaml.safe_load((project / "config/config.yaml").read_text())["dataset"] == "demo"
    (project / "config/config.yaml").write_text(yaml.safe_dump(OWN_CONFIG, sort_keys=False))
    result = snakemake(project, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return project


@pytest.mark.slow
def test_workflow_runs_as_a_module_with_the_projects_own_config(project):
    results = project / "results/ours"
    for name in ("dataset.h5", "DATASET.md", "croissant.json", "report.json", "report.md"):
        assert (results / name).stat().st_size > 0, name
    dataset = read_dataset(results / "dataset.h5")
    assert dataset.config == validate_config(OWN_CONFIG)
    assert len(dataset.outputs["quad_x"]) == 48 and len(dataset.splits["test"]) == 12
    assert not (ROOT / "results/ours").exists()  # everything in the project's folder
    again = snakemake(project, "--cores", "2")
    assert again.returncode == 0 and "Nothing to be done" in again.stderr


@pytest.mark.slow
def test_snakemake_report_zip_holds_the_report_and_its_figures(project):
    result = snakemake(project, "--report", "report.zip", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(project / "report.zip") as archive:
        names = archive.namelist()
        assert "report/report.html" in names
        figures = {name.rsplit("/", 1)[-1] for name in names if name.endswith(".png")}
        assert {"throughput.png", "norm.png"} <= figures
        assert b"cvgen" in archive.read("report/report.html")
    figures_made = {p.name for p in (project / "results/ours/report").glob("*.png")}
    assert figures == figures_made


def test_catalog_file_declares_flags_conda_and_report():
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    usage = catalog["usage"]
    assert usage["mandatory-flags"]["desc"] and usage["mandatory-flags"]["flags"] == "--cores N"
    assert usage["software-stack-deployment"] == {"conda": True}
    assert usage["report"] is True
    environments = set()
    for path in [ROOT / "Snakefile", *RULES]:
        environments |= set(re.findall(r'conda:\s*\n\s*"([^"]+)"', path.read_text()))
    assert environments == {"../../envs/cvgen.yaml"}
    assert (ROOT / "envs/cvgen.yaml").is_file()
    assert (ROOT / "workflow/Snakefile").is_file()  # the standard layout modules point at


def test_config_readme_describes_every_top_level_key():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    readme = (ROOT / "config/README.md").read_text()
    described = set(re.findall(r"^\| `(\w+)` \|", readme, flags=re.MULTILINE))
    assert described == set(schema["properties"])
    assert (ROOT / "config/config.yaml").read_text() == (ROOT / "config.yaml").read_text()


def rule_blocks() -> dict[str, str]:
    """Each rule's text (name -> body) in the Snakefiles."""
    blocks = {}
    for path in [ROOT / "Snakefile", ROOT / "workflow/Snakefile", *RULES]:
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", path.read_text(), re.M | re.S):
            blocks[match.group(1)] = match.group(2)
    return blocks


def test_every_rule_has_a_docstring_naming_its_wildcards():
    blocks = rule_blocks()
    assert {"all", "prepare_params", "generate_shard", "aggregate", "dataset_card"} <= set(blocks)
    for name, body in blocks.items():
        docstring = re.match(r'\s*"""(.*?)"""', body, re.S)
        assert docstring, f"rule {name} has no docstring"
        outputs = re.search(r"\n    output:\n(.*?)\n    \w+:", body, re.S)
        wildcards = set(re.findall(r"\{\{(\w+)\}\}", outputs.group(1) if outputs else ""))
        text = " ".join(docstring.group(1).split())
        for wildcard in wildcards:
            assert f"`{wildcard}`" in text, f"rule {name}: {wildcard}"
        if not wildcards:
            assert "No wildcards" in text, f"rule {name}"


@pytest.mark.parametrize(
    "output",
    [
        "params.h5",
        "shards/{{shard}}.h5",
        "shards/{{shard}}.h5.sha256",
        "dataset.h5",
        "DATASET.md",
        "croissant.json",
        "report.json",
        "report.md",
    ],
)
def test_outputs_that_must_not_be_empty_are_ensured(output):
    text = "".join(path.read_text() for path in RULES)
    assert f'ensure(f"{{RESULTS}}/{output}", non_empty=True)' in text
