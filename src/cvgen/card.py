"""The dataset card: DATASET.md (for people) and croissant.json (Croissant 1.1 metadata, for
dataset search and ML tooling), written next to dataset.h5 from that file alone.

The card says what was simulated (circuit, parameters, engine and why), the accuracy evidence
(norm, the convergence check at a higher cutoff, or "exact" on the Gaussian engine), the sizes,
the checksums (the file's SHA-256 and each array's from the manifest), the split, the
conventions, how to load it (numpy, torch, tf.data) and how to rebuild it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from cvgen.conventions import OUTPUT_MEANINGS
from cvgen.dataset import DATASET_FIX
from cvgen.shards import atomic_file, file_sha256, open_checked

__all__ = ["CROISSANT_CONTEXT", "croissant", "dataset_card", "write_card"]

CROISSANT_VERSION = "http://mlcommons.org/croissant/1.1"
# The standard Croissant JSON-LD context (as mlcroissant writes it).
CROISSANT_CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
CITATION = (
    "cvgen: reproducible HDF5 datasets of samples from continuous-variable quantum circuits "
    "(see CITATION.cff in the cvgen repository)"
)
DATA_TYPES = {"f": "sc:Float", "i": "sc:Integer", "u": "sc:Integer", "b": "sc:Boolean"}


def write_card(dataset: str | Path, markdown: str | Path, metadata: str | Path) -> None:
    """Write DATASET.md and croissant.json for a dataset.h5 (each atomically)."""
    facts = read_facts(dataset)
    with atomic_file(markdown) as temporary:
        Path(temporary).write_text(dataset_card(facts))
    with atomic_file(metadata) as temporary:
        Path(temporary).write_text(json.dumps(croissant(facts), indent=2) + "\n")


def read_facts(path: str | Path) -> dict:
    """What the card says, read from dataset.h5 (its norm through its checksums)."""
    path = Path(path)
    with open_checked(path, "dataset", DATASET_FIX, "build it with snakemake") as file:
        handle = file.handle
        attrs = {key: _plain(value) for key, value in handle.attrs.items()}
        arrays = {}
        for name in file.names():
            data = handle[name]
            arrays[name] = {
                "shape": list(data.shape),
                "dtype": data.dtype.str.lstrip("<>|="),
                "kind": data.dtype.kind,
                "bytes": int(data.size * data.dtype.itemsize),
                "chunks": list(data.chunks or ()),
                "attrs": {key: _plain(value) for key, value in data.attrs.items()},
            }
        norm = file.array("outputs/norm") if "outputs/norm" in arrays else np.ones(1)
        sample_names = json.loads(handle["samples/parameters"].attrs["names"])
        circuit_names = json.loads(handle["circuits/parameters"].attrs["names"])
    plan = json.loads(attrs["plan"])
    return {
        "file": path.name,
        "sha256": file_sha256(path),
        "file_bytes": path.stat().st_size,
        "attrs": attrs,
        "plan": plan,
        "config": json.loads(attrs["config"]),
        "arrays": arrays,
        "outputs": json.loads(attrs["outputs"]),
        "sample_parameters": sample_names,
        "circuit_parameters": circuit_names,
        "norm": {
            "min": float(norm.min()),
            "mean": float(norm.mean()),
            "below_threshold": int(np.sum(norm < plan["norm_threshold"])),
        },
        "split": json.loads(attrs.get("split", "null")),
        "manifest": json.loads(attrs.get("manifest", "{}")),
    }


def _plain(value):
    """An HDF5 attribute as a JSON-ready value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def dataset_card(facts: dict) -> str:
    """DATASET.md: the dataset card."""
    attrs, plan, config = facts["attrs"], facts["plan"], facts["config"]
    name, n = plan["dataset"], plan["n_samples"]
    circuit = config["circuit"]
    source = (
        f"the Blackbird script `{circuit['blackbird']}`"
        if circuit.get("blackbird")
        else f"the `{circuit['template']}` template"
    )
    lines = [
        f"# Dataset card: {name}",
        "",
        f"{n:,} samples of a {plan['circuit']['modes']}-mode continuous-variable quantum circuit "
        f"({source}), {plan['n_circuits']:,} circuit(s) x {plan['samples_per_circuit']:,} "
        f"samples, simulated by cvgen {attrs.get('git_commit', '')[:12] or ''} and written to "
        f"`{facts['file']}` on {attrs.get('created_utc', '?')} (schema_version "
        f"{attrs.get('schema_version', '0')}). Generated from `{facts['file']}` by "
        "`cvgen card`; the machine-readable version is `croissant.json` (Croissant 1.1).",
        "",
        "## What was simulated",
        "",
        "| | |",
        "|---|---|",
        f"| circuit | {source}, {plan['circuit']['modes']} modes, "
        f"{circuit.get('layers', '')} layer(s) |",
        f"| engine | `{plan['engine']}` ({plan.get('engine_reason', '')}) |",
        f"| backend | `{plan['backend']}` ({plan['backend_reason']}) |",
        f"| Fock cutoff, truncation | {plan['circuit']['cutoff']}, "
        f"{plan['circuit']['truncation']} |",
        f"| dtype | {plan['circuit']['dtype']} (real outputs {attrs.get('real_dtype', '?')}) |",
        f"| seed | {plan['seed']} |",
        f"| outputs | {', '.join(f'`{o}`' for o in facts['outputs'])} |",
        f"| config hash | `{plan['config_hash']}` |",
        "",
        "Parameters (first matching rule wins):",
        "",
        "| match | distribution | values | vary |",
        "|---|---|---|---|",
    ]
    for rule in config["parameters"]:
        values = ", ".join(
            f"{k} {v}" for k, v in rule.items() if k not in ("match", "distribution", "vary")
        )
        lines.append(
            f"| `{rule['match']}` | {rule['distribution']} | {values} | {rule.get('vary', '')} |"
        )
    lines += [
        "",
        f"Per-sample inputs: {_names(facts['sample_parameters'])}. Per-circuit parameters: "
        f"{_names(facts['circuit_parameters'])}.",
        "",
        *_accuracy(facts),
        *_outputs_table(facts),
        *_split_section(facts),
        "## Conventions",
        "",
        f"- {attrs.get('quadrature_order', '')}.",
        f"- {attrs.get('fock_order', '')}.",
        f"- {attrs.get('expectation_values', '')}.",
    ]
    for output, model in json.loads(attrs.get("detector_model", "{}")).items():
        lines.append(f"- `{output}`: {model}.")
    lines += ["", *_loading(facts), *_rebuilding(facts), *_checksums(facts)]
    return "\n".join(lines) + "\n"


def _names(names: list[str], shown: int = 12) -> str:
    if not names:
        return "none"
    listed = ", ".join(f"`{n}`" for n in names[:shown])
    return listed if len(names) <= shown else f"{listed}, ... ({len(names)} in all)"


def _accuracy(facts: dict) -> list[str]:
    attrs, plan, norm = facts["attrs"], facts["plan"], facts["norm"]
    lines = ["## Accuracy evidence", ""]
    if plan["engine"] == "gaussian":
        lines += [
            "Engine `gaussian`: Gaussian states are simulated exactly (means and covariances): "
            "no cutoff, no truncation error, `norm` is 1.",
            "",
        ]
        return lines
    lines += [
        f"- Probability kept inside the cutoff (`norm`): lowest {norm['min']:.6f}, mean "
        f"{norm['mean']:.6f}; {norm['below_threshold']} of {plan['n_samples']:,} samples below "
        f"norm_threshold {plan['norm_threshold']}.",
    ]
    checked = int(attrs.get("convergence_samples", 0))
    if checked:
        lines.append(
            f"- Convergence check: {checked} seeded samples re-run at cutoff "
            f"{attrs.get('convergence_reference_cutoff')} (tolerance "
            f"{plan['convergence']['tolerance']}); largest and mean absolute change per output:"
        )
        for key, value in attrs.items():
            if key.startswith("convergence_max_abs_deviation_"):
                output = key.removeprefix("convergence_max_abs_deviation_")
                mean = attrs.get(f"convergence_mean_abs_deviation_{output}", float("nan"))
                over = value > plan["convergence"]["tolerance"]
                verdict = " **above the tolerance**" if over else ""
                lines.append(f"  - `{output}`: {value:.3g} (mean {mean:.3g}){verdict}")
    else:
        lines.append("- Convergence check: switched off (convergence.fraction 0).")
    lines += [
        "",
        "Per-sample deviations are under `/convergence` in the file; report.md next to it has "
        "the full report.",
        "",
    ]
    return lines


def _outputs_table(facts: dict) -> list[str]:
    lines = [
        "## Sizes",
        "",
        f"`{facts['file']}`: {facts['file_bytes'] / 2**20:.2f} MB on disk (gzip, shuffle, "
        "Fletcher-32 checksums). Every array is sample-axis first, chunked along samples.",
        "",
        "| array | shape | dtype | axes | meaning | MB uncompressed |",
        "|---|---|---|---|---|---|",
    ]
    for path, info in facts["arrays"].items():
        if not path.startswith(("outputs/", "samples/", "circuits/", "splits/")):
            continue
        output = path.removeprefix("outputs/")
        axes = ", ".join(json.loads(info["attrs"].get("axes", "[]")))
        meaning = info["attrs"].get("meaning", OUTPUT_MEANINGS.get(output, ""))
        lines.append(
            f"| `{path}` | {' x '.join(map(str, info['shape']))} | {info['dtype']} | {axes} | "
            f"{meaning} | {info['bytes'] / 2**20:.2f} |"
        )
    return [*lines, ""]


def _split_section(facts: dict) -> list[str]:
    split = facts["split"]
    if not split:
        return [
            "## Split",
            "",
            "None: the config has no `split` (add e.g. `split: {train: 0.8, val: 0.1, test: "
            "0.1}` and rebuild to get one by circuit).",
            "",
        ]
    lines = [
        "## Split",
        "",
        "By circuit, never by sample or shot: no circuit's samples fall in two parts, so "
        "per-circuit parameters do not leak between them. Recorded in `/splits/circuit_part`.",
        "",
        "| part | fraction | circuits | samples |",
        "|---|---|---|---|",
    ]
    for part in split["parts"]:
        lines.append(
            f"| {part} | {split['fractions'][part]} | {split['circuits'][part]} | "
            f"{split['samples'][part]} |"
        )
    return [*lines, ""]


def _loading(facts: dict) -> list[str]:
    file, outputs = facts["file"], facts["outputs"]
    first = outputs[0]
    part = facts["split"]["parts"][0] if facts["split"] else None
    split = f', split="{part}"' if part else ""
    return [
        "## Loading",
        "",
        "```python",
        "import cvgen  # numpy, the whole file",
        f'ds = cvgen.read_dataset("{file}")',
        f'ds.outputs["{first}"], ds.sample_parameters, ds.circuit_index, ds.splits',
        "",
        "from torch.utils.data import DataLoader  # pip install -e .[torch]",
        "from cvgen.torch import CvgenDataset",
        f'data = CvgenDataset("{file}", outputs=["{first}"]{split})',
        "for batch in DataLoader(data, batch_size=256, shuffle=True, num_workers=4):",
        f'    batch["inputs"], batch["{first}"]',
        "",
        "from cvgen.tf import dataset  # streams batches from the file",
        f'for batch in dataset("{file}", outputs=["{first}"]{split}, batch_size=256):',
        f'    batch["inputs"], batch["{first}"]',
        "```",
        "",
    ]


def _rebuilding(facts: dict) -> list[str]:
    attrs = facts["attrs"]
    versions = json.loads(attrs.get("versions", "{}"))
    return [
        "## Rebuilding",
        "",
        f"Built from cvgen commit `{attrs.get('git_commit', '') or 'unknown'}` with "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + ". In a cvgen checkout at that commit:",
        "",
        "```bash",
        f"cvgen config {facts['file']} > rebuilt.yaml",
        "snakemake --cores N --configfile rebuilt.yaml",
        "```",
        "",
        "The config it was built from (every default filled in):",
        "",
        "```yaml",
        yaml.safe_dump(facts["config"], sort_keys=False).rstrip(),
        "```",
        "",
    ]


def _checksums(facts: dict) -> list[str]:
    lines = [
        "## Checksums",
        "",
        f"SHA-256 of `{facts['file']}`: `{facts['sha256']}` (`sha256sum {facts['file']}`). The "
        "file also records each array's SHA-256 in its `manifest` attribute, checked by "
        f"`cvgen verify {facts['file']}` and by `cvgen.read_dataset`; those of its data:",
        "",
        "| array | SHA-256 of its values |",
        "|---|---|",
    ]
    data = ("outputs/", "samples/", "circuits/", "splits/")
    manifest = sorted(facts["manifest"].items())
    lines += [f"| `{name}` | `{digest}` |" for name, digest in manifest if name.startswith(data)]
    return [*lines, ""]


def croissant(facts: dict) -> dict:
    """Croissant 1.1 JSON-LD metadata: the file (with its SHA-256) and one record per sample."""
    plan, attrs, file = facts["plan"], facts["attrs"], facts["file"]
    fields = [
        _field(
            file,
            "circuit",
            "The circuit the sample belongs to (index into the per-circuit parameters)",
            "sc:Integer",
            "samples/circuit_index",
            [],
        ),
        _field(
            file,
            "inputs",
            "Per-sample parameters, in the order " + ", ".join(facts["sample_parameters"]),
            "sc:Float",
            "samples/parameters",
            [len(facts["sample_parameters"])],
        ),
    ]
    for name in facts["outputs"]:
        info = facts["arrays"][f"outputs/{name}"]
        description = info["attrs"].get("meaning", name)
        if "detector" in info["attrs"]:
            description += f"; {info['attrs']['detector']}"
        kind = DATA_TYPES.get(info["kind"], "sc:Float")
        fields.append(_field(file, name, description, kind, f"outputs/{name}", info["shape"][1:]))
    record_sets = [
        {
            "@type": "cr:RecordSet",
            "@id": "samples",
            "name": "samples",
            "description": f"One record per sample ({plan['n_samples']}), sample-axis first in "
            "every HDF5 array (`extract.column` is the array's path in the file).",
            "field": fields,
        }
    ]
    if facts["split"]:
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": "splits",
                "name": "splits",
                "description": "The split by circuit: the part of each circuit, as an index "
                "into the parts " + ", ".join(facts["split"]["parts"]),
                "field": [
                    _field(
                        file,
                        "circuit_part",
                        "Part of the circuit",
                        "sc:Integer",
                        "splits/circuit_part",
                        [],
                        "splits",
                    )
                ],
            }
        )
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "name": plan["dataset"],
        "description": (
            f"{plan['n_samples']} samples of a {plan['circuit']['modes']}-mode "
            f"continuous-variable quantum circuit simulated by cvgen (engine {plan['engine']}, "
            f"cutoff {plan['circuit']['cutoff']}); outputs {', '.join(facts['outputs'])}. "
            f"Conventions: hbar = {attrs.get('hbar')}; {attrs.get('fock_order', '')}. "
            "See DATASET.md."
        ),
        "conformsTo": CROISSANT_VERSION,
        "citeAs": CITATION,
        "version": str(attrs.get("schema_version", "0")),
        "datePublished": str(attrs.get("created_utc", ""))[:10],
        "keywords": ["quantum", "continuous-variable", "photonic", "simulation", "HDF5"],
        "distribution": [
            {
                "@type": "cr:FileObject",
                "@id": file,
                "name": file,
                "description": "The dataset (HDF5; see DATASET.md for its layout)",
                "contentUrl": file,
                "contentSize": f"{facts['file_bytes']} B",
                "encodingFormat": "application/x-hdf5",
                "sha256": facts["sha256"],
            }
        ],
        "recordSet": record_sets,
    }


def _field(
    file: str,
    name: str,
    description: str,
    kind: str,
    column: str,
    shape: list,
    record: str = "samples",
) -> dict:
    """One Croissant field read from the HDF5 array at `column` (an array when `shape`)."""
    field = {
        "@type": "cr:Field",
        "@id": f"{record}/{name}",
        "name": name,
        "description": description,
        "dataType": kind,
        "source": {"fileObject": {"@id": file}, "extract": {"column": column}},
    }
    if shape:
        field["cr:isArray"] = True
        field["cr:arrayShape"] = ",".join(map(str, [-1, *shape]))
    return field
