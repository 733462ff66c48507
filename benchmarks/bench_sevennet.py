"""SevenNet-0 embedding throughput on perov_5 crystals, CPU (CIFs parsed, ASE atoms built outside the timed region).

Stages: `sevennet` — our frozen encoder (vesin graphs, SevenNet's modules up to the readout on
one batched graph, inference mode, batch 64) against SevenNet's own calculator path, what a user
would otherwise write: `SevenNetCalculator("7net-0")` and `atoms.get_potential_energy()` per
structure (one graph per call, energy, forces and stress by autograd), with the node features
read by a hook before the readout so that the two vectors can be compared; `sevennet graphs` —
graph building alone, ours (vesin) against SevenNet's `unlabeled_atoms_to_graph` (matscipy).
Ours and the peer are timed in turn, in one process, on one torch thread: on this shared 2-core
machine two threads made the calculator 11× slower (0.26 → 2.9 s per structure) when other jobs ran.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from benchmarks import best_of_each, read_cifs, row

DATASET = "perov_5"


def run(quick: bool) -> list[dict[str, Any]]:
    """Time our encoder and SevenNet's calculator on the same structures, on CPU, one torch thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> list[dict[str, Any]]:
    import torch
    import vesin
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor
    from sevenn.calculator import SevenNetCalculator
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    from crystalrep.encoders import get_encoder
    from crystalrep.encoders.sevennet import READOUT

    n, repeat = (20, 1) if quick else (200, 2)
    structures = [Structure.from_str(cif, fmt="cif") for cif in read_cifs(DATASET, n)]
    atoms = [AseAtomsAdaptor.get_atoms(s) for s in structures]
    sites = sum(len(s) for s in structures)
    threads = f"torch threads {torch.get_num_threads()}"

    encoder = get_encoder("sevennet")
    encoder.embed_structures(structures[:8], device="cpu")  # warm-up (model load, lazy imports)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor product accelerator": there is none on CPU
        calc = SevenNetCalculator("7net-0", device="cpu")
    seen: list[np.ndarray] = []
    calc.model._modules[READOUT].register_forward_pre_hook(
        lambda _m, args: seen.append(args[0]["x"].detach().mean(dim=0).numpy()))
    ours: list[np.ndarray] = []

    def calculator() -> None:
        seen.clear()
        for a in atoms:
            a.calc = calc
            a.get_potential_energy()

    def our_graphs() -> None:
        for s in structures:
            lattice = s.lattice.matrix
            vesin.NeighborList(cutoff=5.0, full_list=True).compute(
                s.frac_coords @ lattice, lattice, periodic=True, quantities="ijD")

    calculator()  # warm-up
    t = best_of_each({
        "ours": lambda: ours.append(encoder.embed_structures(structures, device="cpu", batch_size=64)),
        "peer": calculator,
    }, repeat)
    ref = np.array(seen)
    diff = float(np.abs(ours[-1] - ref).max() / np.abs(ref).max())
    edges = sum(len(unlabeled_atoms_to_graph(a, 5.0)["edge_vec"]) for a in atoms)
    rows = [
        row("sevennet", "crystalrep sevennet encoder", "ours", n, t["ours"],
            f"{sites} sites, {edges} edges at 5 Å; batch 64; {threads}; max rel. diff to the calculator's "
            f"node features {diff:.1e}"),
        row("sevennet", "SevenNetCalculator.get_potential_energy per structure", "peer", n, t["peer"],
            "one graph per call; energy, forces and stress (autograd)"),
    ]
    g = best_of_each({
        "ours": our_graphs,
        "peer": lambda: [unlabeled_atoms_to_graph(a, 5.0) for a in atoms],
    }, repeat)
    rows.append(row("sevennet graphs", "crystalrep vesin neighbour list", "ours", n, g["ours"], "5 Å"))
    rows.append(row("sevennet graphs", "SevenNet unlabeled_atoms_to_graph", "peer", n, g["peer"],
                    "matscipy neighbour list"))
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Our encoder against the calculator path a user would otherwise take."""
    t = {(r["stage"], r["impl"]): r["seconds"] for r in rows}
    ours = t[("sevennet", "crystalrep sevennet encoder")]
    ratio = t[("sevennet", "SevenNetCalculator.get_potential_energy per structure")] / ours
    return [f"sevennet: {ratio:.1f}× SevenNet's calculator path "
            f"({rows[0]['n'] / ours:.1f} crystals/s against {rows[0]['n'] / (ours * ratio):.1f})."]
