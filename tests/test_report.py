"""`fusekit report` on real DEV pairs: FILM with the golden weights, compact and every IVF baseline, and folders
fused elsewhere. The tables must hold `fusekit metrics`' numbers for the same files, mark best and second best,
be valid LaTeX, carry the papers' rows with citations; the figures must have the documented size and insets; the
HTML page must render in headless Chromium. FILM is slow on CPU, so the pairs are two 96x72 crops."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import GOLDEN, assert_user_error, pair_paths, run_fusekit
from fusekit.app.report import figures
from fusekit.app.report.tables import tex_escape
from fusekit.io.formats import sha256_file, write_safetensors
from fusekit.metrics.registry import METRICS

FILM_WEIGHTS = GOLDEN / "film" / "film_case_a_weights.safetensors"
PAIRS = (("00028N", (300, 200)), ("00107D", (250, 180)))
CROP = (96, 72)
MODELS = ["film", "compact", "gff", "lp"]  # gff and lp: every training-free IVF model


def ok(result):
    assert result.returncode == 0, result.stderr.decode()
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two real MSRS pairs (cropped), a FILM text-features file per pair, and one report over them."""
    base = tmp_path_factory.mktemp("report")
    for name, (left, top) in PAIRS:
        for role, source in zip(("ir", "vi"), pair_paths("IVF", "MSRS", name)):
            target = base / role / f"{name}.png"
            target.parent.mkdir(exist_ok=True)
            Image.open(source).crop((left, top, left + CROP[0], top + CROP[1])).save(target)
        text = torch.from_numpy(np.random.default_rng(len(name)).standard_normal((8, 768)).astype(np.float32))
        (base / "text").mkdir(exist_ok=True)
        write_safetensors(base / "text" / f"{name}.safetensors", "text-features", {"text": text}, {
            "encoder": "blip2", "dim": "768", "image_sha256_a": sha256_file(base / "ir" / f"{name}.png"),
            "image_sha256_b": sha256_file(base / "vi" / f"{name}.png"),
        })
    command = [base / "ir", base / "vi", "--dataset", "MSRS", "--models", "film,compact,baselines",
               "--weights", f"film={FILM_WEIGHTS}", "--text", f"film={base / 'text'}", "--device", "cpu", "-o", base / "out"]
    ok(run_fusekit("report", *command))
    return base, command


def rows_of(out):
    with open(out / "report.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def metric_columns(rows):
    return [key for key in rows[0] if key in METRICS]


def test_writes_every_output(run):
    base, _ = run
    out = base / "out"
    for name in ("report.md", "report.tex", "report.csv", "report.html"):
        assert (out / name).stat().st_size > 500, name
    for name, _ in PAIRS:
        assert (out / "figures" / f"{name}.png").is_file()
        assert (out / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert json.loads((out / "figures" / f"{name}.json").read_text())["pair"] == name
        for model in MODELS:
            assert (out / "fused" / model / f"{name}.png").is_file()


def test_table_numbers_are_fusekit_metrics_of_the_same_files(run):
    base, _ = run
    out = base / "out"
    rows = rows_of(out)
    names = metric_columns(rows)
    assert names == ["EN", "SD", "SF", "AG", "VIF", "Qabf", "SCD"]  # FILM's, TGIF's, TeSG's and MTIF's MSRS columns
    ours = {row["method"]: row for row in rows if row["kind"] == "fusekit"}
    assert list(ours) == MODELS
    for model in MODELS:
        result = ok(run_fusekit("metrics", "--fused", out / "fused" / model, "--a", base / "ir", "--b", base / "vi",
                                "--json", "-M", ",".join(names)))
        means = json.loads(result.stdout)["mean"]
        assert ours[model]["pairs"] == "2"
        for name in names:
            assert float(ours[model][name]) == means[name], (model, name)


def _ranks(values, higher):
    distinct = sorted({round(v, 4) for v in values if v is not None}, reverse=higher)[:2]
    return [distinct.index(round(v, 4)) + 1 if v is not None and round(v, 4) in distinct else 0 for v in values]


def test_best_bold_second_underlined_in_markdown_and_latex(run):
    base, _ = run
    out = base / "out"
    rows = [row for row in rows_of(out) if row["kind"] != "difference"]
    names = metric_columns(rows)
    first_table = (out / "report.md").read_text().split("\n\n")[1]  # the comparison table; the differences follow
    md_lines = [line for line in first_table.splitlines() if "---" not in line][1:]
    first_tex = (out / "report.tex").read_text().split("\\end{table}")[0]  # the difference table follows
    tex_lines = [line for line in first_tex.splitlines() if line.endswith("\\\\")][1:]
    assert len(md_lines) == len(tex_lines) == len(rows)
    marked = 0
    for column, name in enumerate(names):
        values = [float(row[name]) if row[name] else None for row in rows]
        expected = _ranks(values, METRICS.get(name).higher_is_better)
        for md, tex, rank in zip(md_lines, tex_lines, expected):
            md_cell = [cell.strip() for cell in md.strip("|").split("|")][2 + column]
            tex_cell = [cell.strip() for cell in tex.removesuffix("\\\\").split("&")][2 + column]
            assert md_cell.startswith("**") == (rank == 1) and md_cell.startswith("<u>") == (rank == 2), (name, md_cell, rank)
            assert tex_cell.startswith("\\textbf{") == (rank == 1) and tex_cell.startswith("\\underline{") == (rank == 2), (name, tex_cell)
            marked += rank > 0
    assert marked >= 2 * len(names)
    assert "↑" in (out / "report.md").read_text() and "$\\uparrow$" in (out / "report.tex").read_text()


def _check_latex(text):
    """Balanced braces and environments, every row with one cell per column: what a LaTeX compiler would reject."""
    stripped = re.sub(r"\\[{}&%$#_\\]", "", text)
    depth = 0
    for char in stripped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+)\}", text):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack.pop() == name
    assert not stack
    tables = text.split("\\end{table}")[:-1]
    assert tables
    methods = []
    for table in tables:  # the comparison table, then the difference table when there is one
        assert re.search(r"\\toprule.*\\midrule.*\\bottomrule", table, re.S)
        spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", table).group(1)
        body = table[table.index("\\toprule"):table.index("\\bottomrule")]
        rows = [line for line in body.splitlines() if line.endswith("\\\\")]
        for line in rows:
            assert len(re.split(r"(?<!\\)&", line)) == len(spec), line
            assert not re.search(r"(?<!\\)[_%#]", line.replace("$\\uparrow$", "").replace("$\\downarrow$", "")), line
        methods.append([re.split(r"(?<!\\)&", line)[0].strip() for line in rows[1:]])
    return methods[0]


def test_latex_is_valid_with_one_row_per_method(run):
    base, _ = run
    out = base / "out"
    text = (out / "report.tex").read_text()
    methods = _check_latex(text)
    assert "\\label{tab:fusekit-msrs-difference}" in text and "\nfilm & fusekit -- FILM Table 1; MTIF Table A1 & " in text
    rows = [row for row in rows_of(out) if row["kind"] != "difference"]
    assert len(methods) == len(rows)
    assert methods[:4] == MODELS
    keys = [(row["method"], row["source"]) for row in rows]
    assert len(set(keys)) == len(keys)  # a method appears once per source
    assert tex_escape("my_gff 50% & #1 {x}") == r"my\_gff 50\% \& \#1 \{x\}"


def test_paper_rows_with_citations(run):
    base, _ = run
    out = base / "out"
    paper = [row for row in rows_of(out) if row["kind"] == "paper"]
    assert paper and all(row["citation"] for row in paper)
    cddfuse = next(row for row in paper if row["method"] == "CDDFuse" and "FILM Table 1" in row["source"])
    assert (float(cddfuse["EN"]), float(cddfuse["SD"]), float(cddfuse["Qabf"])) == (6.70, 43.39, 0.69)
    assert "TGIF Table 1" in cddfuse["source"] and "ICML 2024" in cddfuse["citation"]
    tesg = next(row for row in paper if row["method"] == "TeSG")
    assert float(tesg["SCD"]) == 1.719 and tesg["SF"] == ""  # TeSG reports no SF
    markdown = (out / "report.md").read_text()
    assert "| TeSG | TeSG Table 1 | 6.712 |" in markdown  # printed with the paper's own three decimals
    assert "- Zhao et al., Image Fusion via Vision-Language Model (FILM), ICML 2024" in markdown
    assert "MGFusion Table 2 reports MSRS in the vifb convention" in markdown


def test_seconds_per_pair_and_parameters(run):
    base, _ = run
    ours = {row["method"]: row for row in rows_of(base / "out") if row["kind"] == "fusekit"}
    assert int(ours["film"]["parameters"]) == 2_070_235
    assert int(ours["compact"]["parameters"]) > 1000
    assert ours["gff"]["parameters"] == ours["lp"]["parameters"] == ""
    assert all(float(ours[model]["seconds_per_pair"]) > 0 for model in MODELS)


def test_figure_size_and_insets(run):
    base, _ = run
    out = base / "out"
    layout = json.loads((out / "figures" / "00028N.json").read_text())
    image = Image.open(out / "figures" / "00028N.png").convert("RGB")
    panel_w, panel_h = round(CROP[0] * 240 / CROP[1]), 240
    assert layout["panel_size"] == [panel_w, panel_h]
    assert image.size == tuple(layout["size"]) == (6 * panel_w + 7 * figures.GAP, panel_h + figures.LABEL_HEIGHT + 2 * figures.GAP)
    assert [panel["label"] for panel in layout["panels"]] == ["Infrared", "Visible", *MODELS]
    x, y, w, h = layout["zoom"]
    assert layout["zoom_chosen"] == "auto" and w == h == min(CROP) // 4 and 0 <= x <= CROP[0] - w and 0 <= y <= CROP[1] - h
    sources = [Image.open(base / "ir" / "00028N.png").convert("RGB"), Image.open(base / "vi" / "00028N.png").convert("RGB")]
    sources += [Image.open(out / "fused" / model / "00028N.png").convert("RGB") for model in MODELS]
    pixels = np.asarray(image).astype(int)
    for panel, source in zip(layout["panels"], sources):
        for left, top, width, height in (panel["zoom_box"], panel["inset"]):
            for px, py in ((left, top), (left + width - 1, top + height - 1), (left + width // 2, top)):
                assert tuple(pixels[py, px]) == figures.BOX_COLOUR
        left, top, width, height = panel["inset"]
        assert panel["box"][0] <= left and left + width <= panel["box"][0] + panel["box"][2]
        enlarged = np.asarray(source.crop((x, y, x + w, y + h)).resize((width, height), Image.Resampling.LANCZOS)).astype(int)
        line = figures.LINE
        inner = pixels[top + line:top + height - line, left + line:left + width - line]
        assert np.array_equal(inner, enlarged[line:-line, line:-line])
    # The automatic region is where the methods' results differ most: no other window differs more.
    greys = np.stack([np.asarray(Image.open(out / "fused" / m / "00028N.png").convert("L"), dtype=np.float64) for m in MODELS])
    spread = greys.std(axis=0)
    chosen = spread[y:y + h, x:x + w].sum()
    for top in range(0, CROP[1] - h + 1, 3):
        for left in range(0, CROP[0] - w + 1, 3):
            assert spread[top:top + h, left:left + w].sum() <= chosen * 1.02


def test_fused_folders_given_zoom_and_difference_to_the_paper(run):
    base, _ = run
    out = base / "out"
    second = base / "second"
    ok(run_fusekit("report", base / "ir", base / "vi", "--dataset", "MSRS", "--models", "lp", "--papers", "FILM",
                   "--fused", f"my_gff={out / 'fused' / 'gff'}", "--fused", f"CDDFuse={out / 'fused' / 'lp'}",
                   "--zoom", "10,8,40,30", "--figures", "1", "-o", second))
    rows = rows_of(second)
    assert {row["source"] for row in rows if row["kind"] == "paper"} <= {"FILM Table 1"}
    first = {row["method"]: row for row in rows_of(out) if row["kind"] == "fusekit"}
    ours = {row["method"]: row for row in rows if row["kind"] == "fusekit"}
    assert ours["my_gff"]["EN"] == first["gff"]["EN"] and ours["CDDFuse"]["SD"] == first["lp"]["SD"]
    difference = next(row for row in rows if row["kind"] == "difference")
    assert (difference["method"], difference["source"]) == ("CDDFuse", "fusekit − FILM Table 1")
    for name, paper in (("EN", 6.70), ("SD", 43.39), ("VIF", 1.05)):
        assert float(difference[name]) == pytest.approx(float(ours["CDDFuse"][name]) - paper, abs=1e-12)
    assert "my\\_gff" in _check_latex((second / "report.tex").read_text())
    layout = json.loads((second / "figures" / "00028N.json").read_text())
    assert layout["zoom"] == [10, 8, 40, 30] and layout["zoom_chosen"] == "given"
    assert not (second / "figures" / "00107D.png").exists()  # --figures 1


def test_rerun_reuses_and_shards_add_up(run):
    base, command = run
    out = base / "out"
    stamps = {path: path.stat().st_mtime_ns for path in (out / "fused").rglob("*.png")}
    before = (out / "report.csv").read_text()
    ok(run_fusekit("report", *command))
    assert {path: path.stat().st_mtime_ns for path in (out / "fused").rglob("*.png")} == stamps
    assert (out / "report.csv").read_text() == before
    sharded = base / "sharded"
    for shard in ("0/2", "1/2"):
        ok(run_fusekit("report", base / "ir", base / "vi", "--task", "ivf", "--models", "baselines", "-o", sharded, "--shard", shard))
        assert not (sharded / "report.csv").exists()
    assert len(list((sharded / "fused" / "gff").glob("*.png"))) == 2
    ok(run_fusekit("report", base / "ir", base / "vi", "--task", "ivf", "--models", "baselines", "-o", sharded,
                   "--metrics", "EN,SD,SF,AG,VIF,Qabf,SCD"))
    whole = {row["method"]: row for row in rows_of(out) if row["kind"] == "fusekit"}
    for row in rows_of(sharded):
        for name in metric_columns([row]):
            assert row[name] == whole[row["method"]][name]


def test_html_is_one_file_that_renders_in_headless_chromium(run, tmp_path):
    base, _ = run
    page = (base / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert "<style>" in page and "film=" in page  # the run settings name each model's options
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (make test-deps installs it)")
    alone = tmp_path / "alone.html"
    shutil.copy(base / "out" / "report.html", alone)  # nothing beside it
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={shot}",
                    "--window-size=1280,1600", alone.as_uri()], capture_output=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    picture = np.asarray(Image.open(shot).convert("RGB"))
    assert picture.shape == (1600, 1280, 3)
    assert picture.std() > 20 and len(np.unique(picture.reshape(-1, 3), axis=0)) > 200  # text, tables and figures drawn


def test_usage_errors(run):
    base, _ = run
    pairs = (base / "ir", base / "vi")
    assert_user_error(run_fusekit("report", *pairs, "--task", "ivf", "--models", "gff", "--weights", "film=x.safetensors", "-o", base / "e"),
                      "report", 2, "'film' is not in --models")
    assert_user_error(run_fusekit("report", "--root", base, "--task", "ivf", "--models", "gff", "-o", base / "e"), "report", 2, "--root needs --dataset")
    assert_user_error(run_fusekit("report", *pairs, "--dataset", "MSRS", "--task", "mif", "--models", "gff", "-o", base / "e"), "report", 2, "does not match MSRS")
    assert_user_error(run_fusekit("report", *pairs, "--task", "ivf", "--models", "gff"), "report", 2, "no output folder")
    assert_user_error(run_fusekit("report", *pairs, "--task", "ivf", "--fused", f"x={base / 'none'}", "-o", base / "e"), "report", 1, "folder not found")
    assert_user_error(run_fusekit("report", *pairs, "--task", "ivf", "--models", "gff", "--zoom", "1,2,3", "-o", base / "e"), "report", 2, "bad --zoom")
    assert_user_error(run_fusekit("report", *pairs, "--task", "ivf", "--models", "film", "--weights", f"film={FILM_WEIGHTS}", "-o", base / "e"),
                      "report", 2, "needs text features")


def test_a_downloaded_dataset_by_name(run):
    base, _ = run
    root = base / "MSRS"
    for role in ("ir", "vi"):
        (root / "test" / role).mkdir(parents=True)
        for name, _ in PAIRS:
            (root / "test" / role / f"{name}.png").symlink_to(base / role / f"{name}.png")
    out = base / "by-name"
    result = ok(run_fusekit("report", "--dataset", "msrs", "--root", root, "--models", "gff", "--papers", "none", "--figures", "0", "-o", out))
    assert "found 2 pairs, but the test split has 361" in result.stderr.decode()
    rows = rows_of(out)
    assert [(row["kind"], row["method"], row["pairs"]) for row in rows] == [("fusekit", "gff", "2")]
    first = {row["method"]: row for row in rows_of(base / "out") if row["kind"] == "fusekit"}
    assert rows[0]["Qabf"] == first["gff"]["Qabf"]
    assert not (out / "figures").exists() and "MSRS test split under" in (out / "report.html").read_text()
