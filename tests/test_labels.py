
from alsseg import labels as L
from alsseg.cli import main


def test_lowerleg_scheme_right_1_to_7_left_11_to_17():
    a = L.load_anatomy()
    assert a.n_muscles == 7
    assert [lab.id for lab in a.labels] == [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, 17]
    assert a.label_id("TA", "R") == 1 and a.label_id("GL", "L") == 17
    assert a.side_of(13) == "L" and a.muscle_index_of(13) == 3
    assert a.groups["anterior"] == ("TA", "EDL")


def test_tables_have_one_row_per_label():
    a = L.load_anatomy()
    dseg = L.dseg_tsv(a).strip().splitlines()
    assert dseg[0].split("\t") == ["index", "name", "abbreviation", "color", "side"]
    assert len(dseg) == 1 + 14
    itk = [l for l in L.itksnap_label_table(a).splitlines() if not l.startswith("#")]
    assert len(itk) == 15 and '"TA_R"' in itk[1]
    slicer = [l for l in L.slicer_color_table(a).splitlines() if not l.startswith("#")]
    assert slicer[1].split()[:2] == ["1", "TA_R"]


def test_new_anatomy_is_data_only(tmp_path):
    spec = tmp_path / "thigh.json"
    spec.write_text('{"name": "thigh", "side_offsets": {"R": 0, "L": 20}, "muscles": ['
                    '{"index": 1, "abbrev": "VL", "name": "vastus lateralis", "colour": [1, 2, 3]}]}')
    a = L.load_anatomy(str(spec))
    assert [lab.id for lab in a.labels] == [1, 21]


def test_cli_labels(capsys, tmp_path):
    assert main(["labels"]) == 0
    assert "TA_R" in capsys.readouterr().out
    out = tmp_path / "dseg.tsv"
    assert main(["labels", "--format", "dseg", "--out", str(out)]) == 0
    assert out.read_text().startswith("index\tname")
    assert main(["labels", "--anatomy", "nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alsseg: error: nonexistent:") and "\n" not in err
