"""Facts about a built binary read from its ELF structure (pyelftools): sizes by kind, linkage,
and a hash that ignores Go's build info, so near-identical binaries can be told apart."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

# Sections that carry the build's identity rather than its code: the build id notes and Go's
# build info (module versions, -ldflags, CGO_ENABLED, …).
_IDENTITY_SECTIONS = (".go.buildinfo", ".note.go.buildid", ".note.gnu.build-id")
UPX_MAGIC = b"UPX!"


@dataclass(frozen=True)
class ElfFacts:
    """What a binary is: sizes of its parts, ELF type, linkage, interpreter, packing, hashes."""

    size_bytes: int
    sha256: str
    sha256_code: str  # Go's pclntab, .text size and section names; "" if not a Go ELF
    elf_type: str  # EXEC | DYN | ? (not ELF)
    machine: str
    text_bytes: int  # allocated, executable sections
    data_bytes: int  # allocated, non-executable sections with file contents (rodata, data, …)
    bss_bytes: int
    debug_bytes: int  # .debug_* / .zdebug_*
    symtab_bytes: int  # .symtab + .strtab
    has_symtab: bool
    has_debug: bool
    linkage: str  # static | dynamic
    interpreter: str  # PT_INTERP, "" if none
    needed: str  # DT_NEEDED, comma-separated
    packed: str  # "upx" or ""

    def as_row(self) -> dict[str, Any]:
        """The facts as cells.csv columns."""
        return asdict(self)


def sha256_file(path: Path) -> str:
    """sha256 of a whole file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_upx(path: Path) -> bool:
    """Whether a file carries UPX's header."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return UPX_MAGIC in head


def read_facts(path: Path) -> ElfFacts:
    """The ELF facts of a binary (pyelftools; a UPX-packed one has few sections)."""
    size = path.stat().st_size
    sha = sha256_file(path)
    packed = "upx" if is_upx(path) else ""
    text = data = bss = debug = symtab = 0
    has_symtab = has_debug = False
    interp = ""
    needed: list[str] = []
    code_hash = hashlib.sha256()
    names: list[str] = []
    has_pcln = False
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            elf_type = str(elf["e_type"]).removeprefix("ET_")
            machine = str(elf["e_machine"]).removeprefix("EM_")
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interp = seg.get_interp_name()  # type: ignore[attr-defined]
            for sec in elf.iter_sections():
                name = sec.name
                flags = sec["sh_flags"]
                stype = sec["sh_type"]
                sz = sec["sh_size"]
                if name.startswith((".debug_", ".zdebug_")):
                    debug += sz
                    has_debug = True
                elif name in (".symtab", ".strtab"):
                    symtab += sz
                    has_symtab = has_symtab or name == ".symtab"
                elif flags & SH_FLAGS.SHF_ALLOC:
                    if stype == "SHT_NOBITS":
                        bss += sz
                    elif flags & SH_FLAGS.SHF_EXECINSTR:
                        text += sz
                    else:
                        data += sz
                if isinstance(sec, DynamicSection):
                    needed += [str(t.needed) for t in sec.iter_tags()  # type: ignore[attr-defined]
                               if t.entry.d_tag == "DT_NEEDED"]
                if name not in _IDENTITY_SECTIONS:
                    names.append(name)
                if name == ".gopclntab":
                    # Go's function table: position-independent, so it is equal for two builds
                    # whose code is the same even when a longer build-info string shifted the
                    # addresses after it (cgo=0 vs cgo=1 of a program without C code).
                    code_hash.update(sec.data())
                    has_pcln = True
                elif name == ".text":
                    code_hash.update(str(sz).encode())
    except ELFError:
        elf_type, machine = "?", "?"
    # Which sections exist (symbols, DWARF) is part of the identity: a stripped binary has the
    # same code but is not "identical but for build info".
    code_hash.update("\0".join(sorted(names)).encode())
    return ElfFacts(
        size_bytes=size, sha256=sha,
        sha256_code=code_hash.hexdigest() if has_pcln and not packed else "",
        elf_type=elf_type, machine=machine, text_bytes=text, data_bytes=data, bss_bytes=bss,
        debug_bytes=debug, symtab_bytes=symtab, has_symtab=has_symtab, has_debug=has_debug,
        linkage="dynamic" if (interp or needed) else "static", interpreter=interp,
        needed=",".join(needed), packed=packed,
    )


def section_names(path: Path) -> list[str]:
    """The section names of an ELF file."""
    with open(path, "rb") as fh:
        return [s.name for s in ELFFile(fh).iter_sections()]
