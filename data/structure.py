"""Read a complex, PDB or mmCIF (plain or gzipped, any line endings), into flat atom and residue arrays (first model).

The format is decided by the content, not the file name: mmCIF text starts with a `data_` block. PDB text is read
as Biopython's PDBParser (the reference parser) reads it. mmCIF is read with gemmi's CIF reader and its
`atom_site` rows go through the same rules as PDB atom records, so that a structure's two forms give the same
arrays: chains are the author chain ids (`auth_asym_id`, any length), residues the author numbers and
insertion codes, ATOM/HETATM from `group_PDB`, the first model only.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from Bio.PDB import PDBParser
from Bio.PDB.PDBExceptions import PDBConstructionException
from Bio.PDB.StructureBuilder import StructureBuilder

COORDINATE_RECORDS = ("ATOM  ", "HETATM")
# Records among the atoms whose numbers Biopython parses (column ranges as it reads them).
BIOPYTHON_NUMBER_RECORDS = {
    "ANISOU": ((28, 35), (35, 42), (43, 49), (49, 56), (56, 63), (63, 70)),
    "SIGUIJ": ((28, 35), (35, 42), (42, 49), (49, 56), (56, 63), (63, 70)),
    "SIGATM": ((30, 38), (38, 46), (46, 54), (54, 60), (60, 66)),
}


class UnscorableComplex(ValueError):
    """A complex that cannot be featurised; the message is a one-line reason without the file name.

    `lasting` is False for a reason that says nothing about the file (mkdssp missing, killed by a signal, or out
    of time on a busy machine): such a reason is reported but never cached, so the next run tries again.
    """

    def __init__(self, reason: str, lasting: bool = True) -> None:
        super().__init__(reason)
        self.lasting = lasting


@dataclass
class ComplexStructure:
    """First model of a complex, flattened in Biopython's chain -> residue -> atom order.

    Coordinates are the parser's float32 values. Residue arrays have one entry per residue; `residue_ca` is the
    index of the residue's CA atom or -1, `residue_atoms` the [start, stop) atom range of each residue.
    `atom_name` and `atom_element` (upper case, "" when the file gives none) are what mkdssp's copy is written from.

    An atom with alternate locations holds Biopython's choice (highest occupancy), as every stage of the
    reference but DSSP read it. `atom_alternates` keeps, for mkdssp's copy only, every conformer of such an
    atom (its index -> (alternate location, x, y, z) in alternate-location order): mkdssp read them
    all from the reference's PDB copy (`data.dssp_mmcif`).
    """

    atom_xyz: np.ndarray
    atom_name_initial: np.ndarray
    residue_chain: np.ndarray
    residue_hetero: np.ndarray
    residue_seq: np.ndarray
    residue_icode: np.ndarray
    residue_name: np.ndarray
    residue_ca: np.ndarray
    residue_atoms: np.ndarray
    atom_name: np.ndarray
    atom_element: np.ndarray
    atom_alternates: dict[int, tuple[tuple[str, float, float, float], ...]] = field(default_factory=dict)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_text(path: str | os.PathLike) -> str:
    """The file as text with `\\n` line endings (gunzipped when it is gzip data, whatever its name)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise UnscorableComplex(f"cannot read file: {error.strerror or error}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise UnscorableComplex(f"cannot read file: broken gzip data ({error})") from None
    if not raw.strip():
        raise UnscorableComplex("empty file")
    return raw.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")


def is_mmcif(text: str) -> bool:
    """mmCIF content: the first line that is neither blank nor a comment opens a `data_` block."""
    for line in text.split("\n", 200):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped[:5].lower() == "data_"
    return False


def first_model(text: str) -> str:
    """PDB text cut to its first model; MODEL/ENDMDL lines removed."""
    kept = []
    for line in text.split("\n"):
        if line.startswith("ENDMDL"):
            break
        if line.startswith("MODEL"):
            continue
        kept.append(line)
    return "\n".join(kept).rstrip("\n") + "\n"


def read_first_model_text(path: str | os.PathLike) -> str:
    """A PDB file as text with `\\n` line endings, cut to its first model; MODEL/ENDMDL lines removed."""
    text = read_text(path)
    if is_mmcif(text):
        raise UnscorableComplex("not a PDB file: mmCIF content (read it with read_structure)")
    return first_model(text)


def require_coordinates(pdb_text: str) -> None:
    if not any(line.startswith(COORDINATE_RECORDS) for line in pdb_text.split("\n")):
        raise UnscorableComplex("not a PDB file: no ATOM/HETATM records")


def parse_structure(pdb_text: str) -> ComplexStructure:
    """Parse first-model PDB text into arrays as Biopython's PDBParser (the reference parser) reads it.

    Text without the irregularities Biopython resolves in its own ways (see `read_regular_atoms`) is read
    directly, into the same arrays, much faster; everything else goes through Biopython itself.
    """
    require_coordinates(pdb_text)
    return read_regular_atoms(pdb_text) or parse_with_biopython(pdb_text)


def parse_with_biopython(pdb_text: str) -> ComplexStructure:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = PDBParser(QUIET=True).get_structure("complex", io.StringIO(pdb_text))
    except Exception as error:  # noqa: BLE001 - Biopython raises many types for malformed records
        records = hybrid36_atom_records(pdb_text)
        if records is not None:
            return records_with_biopython(records)
        raise UnscorableComplex(f"unreadable PDB: {first_line(error)}") from None
    return biopython_arrays(structure)


def hybrid36_atom_records(pdb_text: str) -> list[tuple] | None:
    """The atom records of PDB text whose residue numbers go past 9999 in hybrid-36 (which Biopython cannot
    read), as PDBParser would read them otherwise: from the first ATOM/HETATM/MODEL record to an `END   ` or
    CONECT record. None when no residue number is hybrid-36, or a record is unreadable anyway."""
    lines = pdb_text.split("\n")
    first = next((k for k, line in enumerate(lines) if line[:6] in ("ATOM  ", "HETATM", "MODEL ")), None)
    if first is None:
        return None
    records, hybrid = [], False
    for line in lines[first:]:
        record = line[:6]
        if record in ("END   ", "CONECT"):
            break
        if record != "ATOM  " and record != "HETATM":
            continue
        try:
            number = hybrid36_number(line[22:26])
            xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
        except (ValueError, IndexError):
            return None
        hybrid |= line[22:26].strip()[:1].isalpha()
        fullname = line[12:16]
        name = fullname.strip() if len(fullname.split()) == 1 else fullname
        records.append((
            record == "HETATM", name, line[16], line[17:20].strip(), line[21], number, line[26], xyz,
            number_or(line[54:60], None), number_or(line[60:66], 0.0), line[76:78].strip().upper(),
        ))
    return records if hybrid else None


def biopython_arrays(structure) -> ComplexStructure:
    """The first model of a Biopython structure as flat arrays."""
    models = list(structure)
    if not models:
        raise UnscorableComplex("not a PDB file: no atoms parsed")

    coordinates, names, elements = [], [], []
    alternates: dict[int, tuple[tuple[str, float, float, float], ...]] = {}
    chains, hetero, seqs, icodes, residue_names, ca_index, bounds = [], [], [], [], [], [], []
    for chain in models[0]:
        for residue in chain:
            het, seq, icode = residue.id
            start = len(coordinates)
            ca = -1
            for atom in residue:
                if atom.get_name() == "CA" and ca < 0:
                    ca = len(coordinates)
                if atom.is_disordered():
                    alternates[len(coordinates)] = conformers(atom)
                coordinates.append(atom.coord)
                names.append(atom.get_name())
                elements.append(atom.element if atom.element != "X" else "")
            chains.append(chain.id)
            hetero.append(het)
            seqs.append(seq)
            icodes.append(icode)
            residue_names.append(residue.get_resname())
            ca_index.append(ca)
            bounds.append((start, len(coordinates)))
    if not coordinates:
        raise UnscorableComplex("not a PDB file: no atoms parsed")
    return ComplexStructure(
        atom_xyz=np.asarray(coordinates, dtype=np.float32).reshape(-1, 3),
        atom_name_initial=np.asarray([name[:1] for name in names], dtype="U1"),
        residue_chain=np.asarray(chains, dtype=object),
        residue_hetero=np.asarray(hetero, dtype=object),
        residue_seq=np.asarray(seqs, dtype=np.int64),
        residue_icode=np.asarray(icodes, dtype=object),
        residue_name=np.asarray(residue_names, dtype=object),
        residue_ca=np.asarray(ca_index, dtype=np.int64),
        residue_atoms=np.asarray(bounds, dtype=np.int64).reshape(-1, 2),
        atom_name=np.asarray(names, dtype=object),
        atom_element=np.asarray(elements, dtype=object),
        atom_alternates=alternates,
    )


def conformers(atom) -> tuple[tuple[str, float, float, float], ...]:
    """Every conformer of a Biopython DisorderedAtom, by alternate location (the order mkdssp's PDB conversion
    gives them)."""
    out = []
    for altloc in atom.disordered_get_id_list():
        child = atom.disordered_get(altloc)
        x, y, z = np.asarray(child.coord, dtype=np.float32).tolist()
        out.append((altloc, x, y, z))
    return tuple(out)


def hybrid36_number(field: str) -> int:
    """A 4-column residue number, decimal or hybrid-36 (`A000` = 10000, ..., `a000` = 1223056), as written past
    9999 by ProDy, CCTBX and other tools. Raises ValueError for anything else."""
    field = field.strip()
    if field[:1].isalpha() and len(field) == 4 and field.isalnum():
        value = int(field.upper(), 36)
        if field[0].isupper() and field[1:] == field[1:].upper():
            return value - 10 * 36**3 + 10**4
        if field[0].islower() and field[1:] == field[1:].lower():
            return value + 16 * 36**3 + 10**4
    return int(field.split()[0])


class Residues:
    """Atoms grouped into residues as PDBParser groups them, for the direct readers (`read_regular_atoms`,
    `mmcif_structure`); `add` returns False where Biopython would resolve something in its own way."""

    def __init__(self) -> None:
        self.chains: dict[str, int] = {}
        self.keys: list[tuple] = []
        self.names: list[str] = []
        self.chain_order: list[int] = []
        self.ca_offset: list[int] = []
        self.atom_residue: list[int] = []
        self.atom_names: list[str] = []
        self.atom_elements: list[str] = []
        self.coordinates: list[tuple[float, float, float]] = []
        self._seen: set[tuple] = set()
        self._names_in_residue: set[str] = set()

    def add(self, key: tuple, residue_name: str, name: str, element: str, xyz: tuple[float, float, float]) -> bool:
        """One atom; key: (chain, hetero flag, number, insertion code)."""
        if not self.keys or self.keys[-1] != key or self.names[-1] != residue_name:
            if key in self._seen:
                return False  # a residue in pieces, or renamed
            self._seen.add(key)
            self.keys.append(key)
            self.names.append(residue_name)
            self.chain_order.append(self.chains.setdefault(key[0], len(self.chains)))
            self.ca_offset.append(-1)
            self._names_in_residue = set()
        if name in self._names_in_residue:
            return False  # an atom name twice in a residue
        if name == "CA":
            self.ca_offset[-1] = len(self._names_in_residue)
        self._names_in_residue.add(name)
        self.atom_residue.append(len(self.keys) - 1)
        self.atom_names.append(name)
        self.atom_elements.append(element)
        self.coordinates.append(xyz)
        return True

    def structure(self) -> ComplexStructure | None:
        """Biopython's order: chain by chain (first appearance), residues and atoms as they came."""
        if not self.coordinates:
            return None
        residue_order = np.argsort(np.asarray(self.chain_order), kind="stable")
        atom_residue = np.asarray(self.atom_residue)
        rank = np.empty_like(residue_order)
        rank[residue_order] = np.arange(len(residue_order))
        atom_order = np.argsort(rank[atom_residue], kind="stable")
        sizes = np.bincount(atom_residue, minlength=len(self.keys))[residue_order]
        stops = np.cumsum(sizes)
        starts = stops - sizes
        ca_offset = np.asarray(self.ca_offset, dtype=np.int64)[residue_order]
        residue_ca = np.where(ca_offset >= 0, starts + ca_offset, -1)
        keys = [self.keys[k] for k in residue_order]
        names = np.asarray(self.atom_names, dtype=object)[atom_order]
        return ComplexStructure(
            atom_xyz=np.asarray(self.coordinates, dtype=np.float64)[atom_order].astype(np.float32),
            atom_name_initial=np.asarray([name[:1] for name in names], dtype="U1"),
            residue_chain=np.asarray([key[0] for key in keys], dtype=object),
            residue_hetero=np.asarray([key[1] for key in keys], dtype=object),
            residue_seq=np.asarray([key[2] for key in keys], dtype=np.int64),
            residue_icode=np.asarray([key[3] for key in keys], dtype=object),
            residue_name=np.asarray([self.names[k] for k in residue_order], dtype=object),
            residue_ca=residue_ca,
            residue_atoms=np.column_stack([starts, stops]).astype(np.int64).reshape(-1, 2),
            atom_name=names,
            atom_element=np.asarray(self.atom_elements, dtype=object)[atom_order],
        )


def read_regular_atoms(pdb_text: str) -> ComplexStructure | None:
    """The structure Biopython's PDBParser builds, read directly; None for text that needs its special rules.

    Follows PDBParser's reading: coordinates start at the first ATOM/HETATM/MODEL record and stop at an
    `END   ` or CONECT record; a residue is (chain, hetero flag, number, insertion code) with hetero flag
    ' ', 'W' (HOH/WAT) or 'H_' + name; chains keep the order they first appear in, and a chain that comes back
    continues where it left off. Left to Biopython: alternate locations, a residue in pieces or renamed, an
    atom name twice in a residue or with inner spaces, unreadable ANISOU/SIGUIJ/SIGATM numbers, MODEL
    records, anything it would fail to read. Residue numbers past 9999 in hybrid-36 are read here (Biopython
    cannot read them).
    """
    lines = pdb_text.split("\n")
    first = next((k for k, line in enumerate(lines) if line[:6] in ("ATOM  ", "HETATM", "MODEL ")), None)
    if first is None:
        return None
    residues = Residues()
    residue_columns = ""  # record and columns 18-27 of the previous atom line: the same residue is not re-read
    for line in lines[first:]:
        record = line[:6]
        if record in ("END   ", "CONECT"):
            break
        if record != "ATOM  " and record != "HETATM":
            if record in ("MODEL ", "ENDMDL") or (record in BIOPYTHON_NUMBER_RECORDS and not numbers_read(line)):
                return None
            continue
        try:
            if record + line[17:27] != residue_columns:
                residue_name = line[17:20].strip()
                number = hybrid36_number(line[22:26])
                key = (line[21], water_or_hetero(residue_name) if record == "HETATM" else " ", number, line[26])
                residue_columns = record + line[17:27]
            name_parts = line[12:16].split()
            xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
        except (ValueError, IndexError):
            return None  # Biopython's own message says what is wrong
        if len(name_parts) != 1 or line[16] != " ":
            return None
        if not residues.add(key, residue_name, name_parts[0], line[76:78].strip().upper(), xyz):
            return None
    return residues.structure()


def numbers_read(line: str) -> bool:
    """Whether Biopython reads the numbers of an ANISOU/SIGUIJ/SIGATM record (it fails on the file if not)."""
    try:
        for start, stop in BIOPYTHON_NUMBER_RECORDS[line[:6]]:
            float(line[start:stop])
    except ValueError:
        return False
    return True


def water_or_hetero(residue_name: str) -> str:
    """Biopython's hetero flag of a HETATM residue."""
    return "W" if residue_name in ("HOH", "WAT") else "H_" + residue_name


# atom_site columns read, PDB meaning first; "?" marks the optional ones (the auth_* fall back to label_*).
# atom_site columns read: the coordinates first (gemmi's `find` needs a required column first), "?" marks the
# optional ones (auth_* fall back to label_*).
ATOM_SITE_COLUMNS = (
    "Cartn_x", "Cartn_y", "Cartn_z", "?group_PDB", "?auth_atom_id", "?label_atom_id", "?label_alt_id",
    "?auth_comp_id", "?label_comp_id", "?auth_asym_id", "?label_asym_id", "?auth_seq_id", "?label_seq_id",
    "?pdbx_PDB_ins_code", "?occupancy", "?B_iso_or_equiv", "?type_symbol", "?pdbx_PDB_model_num",
)


def mmcif_atom_records(text: str) -> list[tuple]:
    """First-model `atom_site` rows of mmCIF text as PDB atom records: (HETATM?, atom name, alternate location,
    residue name, chain, number, insertion code, (x, y, z), occupancy, B, element)."""
    import gemmi  # only for mmCIF input

    try:
        document = gemmi.cif.read_string(text)
        block = next((block for block in document if block.find_mmcif_category("_atom_site.")), None)
        table = block.find("_atom_site.", list(ATOM_SITE_COLUMNS)) if block is not None else None
    except (RuntimeError, ValueError) as error:
        raise UnscorableComplex(f"unreadable mmCIF: {first_line(error)}") from None
    if table is None or not len(table):
        if block is not None and block.find_values("_atom_site.id"):
            raise UnscorableComplex("unreadable mmCIF: atom_site has no Cartn_x, Cartn_y and Cartn_z columns")
        raise UnscorableComplex("mmCIF without atom_site records (no coordinates)")

    def column(*names: str) -> list[str]:
        """Values of the first column, each missing one ('?', '.') taken from the next column that has it."""
        values = [""] * len(table)
        for name in reversed(names):
            index = ATOM_SITE_COLUMNS.index(name)
            if table.has_column(index):
                values = [gemmi.cif.as_string(value) or fallback for value, fallback in zip(
                    table.column(index), values, strict=True)]
        return values

    group = column("?group_PDB")  # ATOM where it is missing
    atom_name = column("?auth_atom_id", "?label_atom_id")
    alt = column("?label_alt_id")
    residue_name = column("?auth_comp_id", "?label_comp_id")
    chain = column("?auth_asym_id", "?label_asym_id")
    number = column("?auth_seq_id", "?label_seq_id")
    insertion = column("?pdbx_PDB_ins_code")
    x, y, z = column("Cartn_x"), column("Cartn_y"), column("Cartn_z")
    occupancy, bfactor = column("?occupancy"), column("?B_iso_or_equiv")
    element = column("?type_symbol")
    model = column("?pdbx_PDB_model_num")
    records = []
    for k in range(len(table)):
        if model[k] != model[0]:
            continue  # another model (models may be interleaved in principle: keep the first one's rows)
        try:
            xyz = (float(x[k]), float(y[k]), float(z[k]))
            residue_number = int(number[k])
        except ValueError:
            raise UnscorableComplex(
                f"unreadable mmCIF: atom_site row {k + 1} has no usable coordinates or residue number"
            ) from None
        records.append((
            group[k].upper() == "HETATM", atom_name[k], alt[k] or " ", residue_name[k], chain[k], residue_number,
            insertion[k] or " ", xyz, number_or(occupancy[k], 1.0), number_or(bfactor[k], 0.0), element[k].upper(),
        ))
    return records


def number_or(text: str, default: float | None) -> float | None:
    try:
        return float(text)
    except ValueError:
        return default


def mmcif_structure(text: str) -> ComplexStructure:
    """mmCIF text -> arrays, by the rules PDBParser applies to the same atoms written as PDB records."""
    records = mmcif_atom_records(text)
    residues = Residues()
    for hetatm, name, alt, residue_name, chain, number, insertion, xyz, _, _, element in records:
        key = (chain, water_or_hetero(residue_name) if hetatm else " ", number, insertion)
        if alt != " " or " " in name or not residues.add(key, residue_name, name, element, xyz):
            return records_with_biopython(records)
    structure = residues.structure()
    if structure is None:
        raise UnscorableComplex("mmCIF without atom_site records (no coordinates)")
    return structure


def records_with_biopython(records: list[tuple]) -> ComplexStructure:
    """Atom records through Biopython's StructureBuilder, in the calls PDBParser makes for PDB lines (alternate
    locations, residues in pieces, repeated atom names: its rules)."""
    builder = StructureBuilder()
    builder.init_structure("complex")
    builder.init_model(0)
    builder.init_seg("    ")
    current_chain = current_residue = current_name = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for serial, record in enumerate(records, 1):
            hetatm, name, alt, residue_name, chain, number, insertion, xyz, occupancy, bfactor, element = record
            flag = ("W" if residue_name in ("HOH", "WAT") else "H") if hetatm else " "
            residue_id = (flag, number, insertion)
            # PDBParser (permissive, as the reference ran it) skips what the builder refuses and goes on.
            try:
                if current_chain != chain:
                    current_chain, current_residue, current_name = chain, residue_id, residue_name
                    builder.init_chain(chain)
                    builder.init_residue(residue_name, flag, number, insertion)
                elif current_residue != residue_id or current_name != residue_name:
                    current_residue, current_name = residue_id, residue_name
                    builder.init_residue(residue_name, flag, number, insertion)
            except PDBConstructionException:
                pass
            try:
                builder.init_atom(name.strip(), np.array(xyz, "f"), bfactor, occupancy, alt, f"{name:<4}"[:4],
                                  serial, element)
            except PDBConstructionException:
                pass
    return biopython_arrays(builder.get_structure())


def read_structure(path: str | os.PathLike) -> ComplexStructure:
    """Read and parse a PDB or mmCIF file, plain or gzipped (first model); the format is decided by content."""
    text = read_text(path)
    if is_mmcif(text):
        return mmcif_structure(text)
    text = first_model(text)
    require_coordinates(text)
    return parse_structure(text)


NUCLEOTIDES = frozenset("A C G U I T N DA DC DG DT DU DI DN".split())
GLYCANS = frozenset("NAG NDG MAN BMA GAL GLA GLC BGC FUC FUL SIA XYL GCS A2G NGA".split())
WATER_NAMES = frozenset({"HOH", "WAT", "DOD"})


def amino_acid_residues(structure: ComplexStructure) -> np.ndarray:
    """Whether each residue has the backbone of an amino acid (atoms N, CA and C): what DSSP can read."""
    if not len(structure.residue_atoms):
        return np.zeros(0, dtype=bool)
    names = structure.atom_name.astype(str)
    starts = structure.residue_atoms[:, 0]
    return np.logical_and.reduce(
        [np.logical_or.reduceat(names == backbone, starts) for backbone in ("N", "CA", "C")]
    )


def chain_content(structure: ComplexStructure, chain: str) -> str:
    """What a chain without amino acids holds, in words: nucleic acid, glycan, ions, water, ligand, CA trace."""
    rows = np.flatnonzero(structure.residue_chain == chain)
    names = [str(name) for name in structure.residue_name[rows]]
    sizes = (structure.residue_atoms[rows, 1] - structure.residue_atoms[rows, 0]).tolist()
    distinct = ", ".join(dict.fromkeys(name for name in names if name not in WATER_NAMES))
    if all(name in WATER_NAMES for name in names):
        return "water"
    if all(name in NUCLEOTIDES for name in names if name not in WATER_NAMES):
        return "nucleic acid"
    if all(name in GLYCANS for name in names if name not in WATER_NAMES):
        return f"glycan {distinct}"
    if all(size == 1 for name, size in zip(names, sizes, strict=True) if name not in WATER_NAMES):
        if all(structure.atom_name[structure.residue_atoms[r, 0]] == "CA" and structure.residue_name[r] != "CA"
               for r in rows if structure.residue_name[r] not in WATER_NAMES):
            return "CA atoms only"
        return f"ions {distinct}" if len(distinct.split(", ")) > 1 else f"ion {distinct}"
    return f"ligand {distinct}" if len(distinct) <= 40 else "ligands"


def require_protein_chains(structure: ComplexStructure) -> None:
    """Raise, with a reason that says what the file holds, unless two chains have amino acids with a backbone.

    DSSP (hence the node features) needs each interface residue's N, CA and C, so a complex with fewer than two
    such chains has no scorable interface: a CA-only (coarse-grained) model, a protein with only DNA, RNA,
    glycans, ligands or ions beside it, or a monomer.
    """
    amino = amino_acid_residues(structure)
    protein = list(dict.fromkeys(structure.residue_chain[amino].tolist()))
    if len(protein) >= 2:
        return
    standard_ca = (structure.residue_ca >= 0) & np.array([het == " " for het in structure.residue_hetero], dtype=bool)
    if not amino.any() and standard_ca.any():
        raise UnscorableComplex(
            "CA-only (coarse-grained) model: DSSP needs the backbone atoms N, CA, C and O of each residue"
        )
    if not protein:
        return  # nothing protein-like at all: the interface search says what is missing
    others = [chain for chain in dict.fromkeys(structure.residue_chain.tolist()) if chain not in protein]
    only = protein[0]
    if not only.strip() and not others:
        raise UnscorableComplex("only one chain (all chain ids blank; segment ids are not read as chains)")
    if not others:
        raise UnscorableComplex(f"only one chain ({only})")
    described = "; ".join(
        f"{chain if chain.strip() else 'blank'}: {chain_content(structure, chain)}" for chain in others[:6]
    )
    more = f"; {len(others) - 6} more" if len(others) > 6 else ""
    raise UnscorableComplex(
        f"only one protein chain ({only if only.strip() else 'blank chain id'}); the other chains hold no amino "
        f"acids ({described}{more}): TopoQA scores interfaces between protein chains"
    )
