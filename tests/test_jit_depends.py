"""``jit.build(..., include_dirs=, depends=)``: sources that include headers from outside.

The headers' sha256 open the source, so the content key follows the headers: a changed
header gives a new library, never the stale one.
"""

from __future__ import annotations

from hashlib import sha256

import pytest

from lazykernels.errors import CompileError
from lazykernels.jit import build, with_dependencies

SOURCE = '#include "lk_test_value.h"\nextern "C" int lk_value(void) { return LK_VALUE; }\n'


def test_header_digests_open_the_source(tmp_path):
    header = tmp_path / "lk_test_value.h"
    header.write_text("#define LK_VALUE 1\n")
    first = with_dependencies(SOURCE, [str(header)])
    digest = sha256(header.read_bytes()).hexdigest()
    assert first.splitlines()[0] == f"// depends on: sha256 {digest} {header}"
    assert first.endswith(SOURCE)
    header.write_text("#define LK_VALUE 2\n")
    assert with_dependencies(SOURCE, [str(header)]) != first


def test_odd_paths_cannot_break_out_of_the_comment(tmp_path):
    odd = tmp_path / "a\\b\nc.h"
    odd.write_text("")
    line = with_dependencies("", [str(odd)])
    assert line.count("\n") == 1 and "\\" not in line and "a?b?c.h" in line


def test_a_missing_header_is_a_compile_error(tmp_path):
    with pytest.raises(CompileError, match="cannot read the header .*absent.h"):
        with_dependencies(SOURCE, [str(tmp_path / "absent.h")])


@pytest.mark.cpu
def test_a_changed_header_builds_a_new_library(tmp_path):
    header = tmp_path / "lk_test_value.h"
    values = []
    for value in (3, 4):
        header.write_text(f"#define LK_VALUE {value}\n")
        library = build(SOURCE, "depends_test", include_dirs=[str(tmp_path)], depends=[str(header)])
        values.append(library.lk_value())
    assert values == [3, 4]
