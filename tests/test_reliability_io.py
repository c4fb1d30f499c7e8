"""Reliability of what `predict` reads and writes and of how the CLI reports errors: unusual input files,
output targets that are not regular files, a full disk, an encoding that cannot hold the text, usage errors.
Each case is one the outside battery of issue #18 names (docs/reliability.md lists them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _reliability import assert_bad_input
from sentiment.atomic import atomic_file


def run_cli(*args: object, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """The real entry point in a real process: Click's usage errors and the streams' encodings are
    handled in ``sentiment.cli.main``, which the in-process runner does not go through."""
    return subprocess.run(
        [sys.executable, "-m", "sentiment", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def predictions(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict", "--top-k", "0", "good"], "Invalid value for '--top-k'"),
        (["predict", "--bogus", "x"], "No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'"),
    ],
    ids=["bad-value", "unknown-option", "unknown-command"],
)
def test_usage_errors_are_one_line(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr  # no Usage: block
    assert result.stderr.startswith("error: ") and expected in result.stderr and "--help" in result.stderr


def test_a_path_with_a_newline_is_named_on_one_line(cli, trained_model: Path, tmp_path: Path) -> None:
    result = cli(["predict", "-m", trained_model, "--file", tmp_path / "no\nsuch.txt"])
    assert_bad_input(result, "input file not found", "no\\nsuch.txt")


def test_plain_text_lines_bom_and_classic_mac_line_ends(cli, trained_model: Path, tmp_path: Path) -> None:
    """A byte-order mark is not part of the first text; a file whose lines end in CR alone has as many
    lines as an editor shows; a CR inside an LF file stays in its text."""
    reference = cli(["predict", "-m", trained_model, "--json", "good film", "bad movie", "awful"])
    expected = [(p["text"], p["probability"]) for p in predictions(reference.stdout)]
    for name, raw in [
        ("bom.txt", "\ufeffgood film\nbad movie\nawful\n".encode()),
        ("mac.txt", b"good film\rbad movie\rawful\r"),
        ("crlf.txt", b"good film\r\nbad movie\r\nawful\r\n"),
    ]:
        (tmp_path / name).write_bytes(raw)
        result = cli(["predict", "-m", trained_model, "--json", "--file", tmp_path / name])
        assert result.exit_code == 0, result.stderr
        assert [(p["text"], p["probability"]) for p in predictions(result.stdout)] == expected, name
    (tmp_path / "stray.txt").write_bytes(b"good\rfilm\nbad movie\n")
    result = cli(["predict", "-m", trained_model, "--json", "--file", tmp_path / "stray.txt"])
    assert [p["text"] for p in predictions(result.stdout)] == ["good\rfilm", "bad movie"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_text_files_with_a_byte_order_mark(
    cli, trained_model: Path, tmp_path: Path, encoding: str
) -> None:
    """Notepad's "Unicode" and Excel's "Unicode Text" save UTF-16 with a byte-order mark: read as UTF-8, each
    line became a garbled text and the outputs one more than the lines."""
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding, b"")
    path = tmp_path / "unicode.txt"
    path.write_bytes(bom + "good film\r\nbad movie \u00e9\r\n".encode(encoding))
    for command in ("predict", "explain"):
        result = cli([command, "-m", trained_model, "--json", "--file", path])
        assert result.exit_code == 0, result.stderr
        assert [p["text"] for p in predictions(result.stdout)] == ["good film", "bad movie \u00e9"], command


def test_file_may_be_a_pipe(cli, trained_model: Path, tmp_path: Path) -> None:
    """<(command), /dev/stdin on a pipe and named FIFOs are readable files, not missing ones."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("w") as fh:
            fh.write("good film\nbad movie\n")

    writer = threading.Thread(target=feed)
    writer.start()
    result = cli(["predict", "-m", trained_model, "--json", "--file", fifo])
    writer.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert [p["text"] for p in predictions(result.stdout)] == ["good film", "bad movie"]


def test_json_output_is_valid_json_with_empty_and_infinite_cells(
    cli, trained_model: Path, tmp_path: Path
) -> None:
    """A table's other columns go into each JSON line: an empty cell or 1e400 must be null, not NaN or
    Infinity (which no JSON parser accepts); an integer past 64 bits is kept (pandas' parser refuses it)."""
    (tmp_path / "t.csv").write_text("review,score\ngood film,1.5\nbad movie,\n")
    (tmp_path / "t.jsonl").write_text(
        '{"review": "good film", "x": 1e400, "id": 123456789012345678901234567890}\n'
        '{"review": "bad movie", "x": null, "id": 1}\n'
    )
    for name, column, values in [("t.csv", "score", ["1.5", None]), ("t.jsonl", "x", [None, None])]:
        result = cli(
            ["predict", "-m", trained_model, "--json", "--text-column", "review", "--file", tmp_path / name]
        )
        assert result.exit_code == 0, result.stderr
        strict = [json.loads(line, parse_constant=pytest.fail) for line in result.stdout.splitlines()]
        assert [row[column] for row in strict] == values
    assert [row["id"] for row in strict] == [123456789012345678901234567890, 1]


def test_an_output_encoding_that_cannot_hold_the_text(trained_model: Path) -> None:
    """PYTHONIOENCODING=ascii: JSON comes out \\u-escaped (still the same JSON), lines backslash-escaped."""
    env = {"PYTHONIOENCODING": "ascii"}
    result = run_cli("predict", "-m", trained_model, "--json", "emoji 😀 film", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii() and json.loads(result.stdout)["text"] == "emoji 😀 film"
    result = run_cli("predict", "-m", trained_model, "日本語 film", env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and "\\u65e5" in result.stdout, result.stderr


def test_a_full_disk_is_a_one_line_error(trained_model: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "sentiment", "predict", "-m", str(trained_model), "--json", "good film"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2 and result.stderr.strip() == "error: No space left on device", result.stderr


def test_atomic_file_follows_a_link_and_writes_a_fifo_in_place(tmp_path: Path) -> None:
    target = tmp_path / "target.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with atomic_file(link) as fh:
        fh.write("new")
    assert link.is_symlink() and target.read_text() == "new"

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    with atomic_file(fifo) as fh:
        fh.write("through the pipe")
    reader.join(timeout=30)
    assert got == ["through the pipe"] and fifo.exists() and not fifo.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link.csv", "target.csv"]


def test_a_stale_temporary_file_of_a_dead_writer_is_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".out.csv.tmp-{int(dead.stdout)}"
    stale.write_text("half")
    with atomic_file(tmp_path / "out.csv") as fh:
        fh.write("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_sigterm_during_predict_output_leaves_no_temporary_file(trained_model: Path, tmp_path: Path) -> None:
    lines = "\n".join(f"id{i} good film bad movie acting plot" for i in range(200_000))
    (tmp_path / "many.txt").write_text(lines + "\n")
    out = tmp_path / "res.csv"
    out.write_text("old")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sentiment",
            "predict",
            "-m",
            str(trained_model),
            "--file",
            "many.txt",
            "-o",
            "res.csv",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while (
        not list(tmp_path.glob(".res.csv.tmp-*")) and process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.001)
    if process.poll() is not None:
        pytest.skip("the prediction finished before its file could be caught half-written")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.strip().endswith("interrupted"), stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.txt", "res.csv"]
    assert out.read_text() == "old"


def test_a_ragged_first_row_is_an_error_not_shifted_columns(cli, trained_model: Path, tmp_path: Path) -> None:
    """pandas reads a first row with more fields than the header by taking the first column as the index:
    every text shifts by one column, silently."""
    (tmp_path / "ragged.csv").write_text("review,id\ngood film,1,extra,cols\nbad movie,2\n")
    result = cli(
        ["predict", "-m", trained_model, "--file", tmp_path / "ragged.csv", "--text-column", "review"]
    )
    assert_bad_input(result, "ragged.csv: cannot parse as csv: a row has more fields than the header")


def test_train_never_replaces_a_folder_of_the_users_files(cli, tmp_path: Path) -> None:
    """--output names a directory that is replaced as a whole: a folder that holds other files is refused,
    as is the current directory; a previous model directory may be replaced."""
    from conftest import write_reviews

    data = write_reviews(tmp_path / "r.csv")
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("years of work")
    result = cli(["train", "--data", data, "-o", docs, "-q"])
    assert_bad_input(result, f"{docs} exists and is not a model directory")
    assert [p.name for p in docs.iterdir()] == ["thesis.txt"]
    result = cli(["train", "--data", data, "-o", Path.cwd(), "-q"])
    assert_bad_input(result, "is the current directory or holds it")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_place_permissions_allow_but_the_file_system_refuses(cli, tmp_path: Path, monkeypatch) -> None:
    """/proc passes every permission check as root, yet nothing can be created there: found before the
    training, by creating a directory there, not after it."""
    from conftest import write_reviews

    data = write_reviews(tmp_path / "r.csv")
    result = cli(["train", "--data", data, "-o", "/proc/sentiment-model", "-q"])
    assert_bad_input(result, "the model directory /proc/sentiment-model cannot be written")
    monkeypatch.setenv("SENTIMENT_HOME", "/proc/sentiment-home")
    result = cli(["train", "--data", data, "-o", tmp_path / "m", "-q"])
    assert_bad_input(result, "the state directory (SENTIMENT_HOME) /proc/sentiment-home cannot be written")


@pytest.mark.parametrize("damage", ["binary", "directory"])
def test_an_unreadable_record_of_the_last_model(cli, tmp_path: Path, monkeypatch, damage: str) -> None:
    monkeypatch.setenv("SENTIMENT_HOME", str(tmp_path))
    pointer = tmp_path / "last_model"
    if damage == "binary":
        pointer.write_bytes(bytes(range(128, 256)))
    else:
        pointer.mkdir()
    assert_bad_input(cli(["eval"]), f"{pointer}: the record of the last model cannot be read")


def test_recording_the_last_model_is_best_effort(tmp_path: Path, monkeypatch, caplog) -> None:
    """The model is saved by then: a state directory replaced by a file meanwhile gives a warning."""
    from sentiment.paths import remember_last_model

    home = tmp_path / "home"
    home.write_text("not a directory")
    monkeypatch.setenv("SENTIMENT_HOME", str(home))
    remember_last_model(tmp_path)
    assert "could not record" in caplog.text


def test_output_to_a_pipe_through_dev_stdout(trained_model: Path, tmp_path: Path) -> None:
    (tmp_path / "two.txt").write_text("good film\nbad movie\n")
    result = subprocess.run(
        f"{sys.executable} -m sentiment predict -m {trained_model} --file two.txt --output /dev/stdout | cat",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "text,label,probability,no_known_words"
    assert len(result.stdout.splitlines()) == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["two.txt"]


def test_a_gzipped_text_file(cli, trained_model: Path, tmp_path: Path) -> None:
    import gzip

    (tmp_path / "t.txt.gz").write_bytes(gzip.compress(b"good film\nbad movie\n"))
    result = cli(["predict", "-m", trained_model, "--json", "--file", tmp_path / "t.txt.gz"])
    assert [p["text"] for p in predictions(result.stdout)] == ["good film", "bad movie"]
    (tmp_path / "bad.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    result = cli(["predict", "-m", trained_model, "--file", tmp_path / "bad.txt.gz"])
    assert_bad_input(result, "bad.txt.gz: not a readable gzip file")


def test_a_huge_nested_value_gives_a_short_message(cli, tiny_config: Path) -> None:
    def nested(depth: int) -> str:
        return "[" + ",".join([nested(depth - 1) if depth else "x"] * 6) + "]"

    result = cli(["config", "validate", tiny_config, "--set", f"data.kaggle_handle={nested(4)}"])
    assert_bad_input(result, "'data.kaggle_handle' = [[")
    assert len(result.stderr) < 300


def test_the_terminal_table_shows_texts_as_written(trained_model: Path) -> None:
    """Brackets are not rich markup ("[bold]" stays, "[/oops]" is no MarkupError) and a control character
    (ESC starts terminal sequences) is shown escaped, not sent to the terminal."""
    from rich.console import Console

    from sentiment import report
    from sentiment.predictor import Predictor

    console = Console(record=True, width=200, force_terminal=True)
    predictions = Predictor.load(trained_model).predict(
        ["a [bold red]great[/] film", "x \x1b]0;title\x07 y", "[/oops]"]
    )
    original = report._console
    report._console = lambda: console  # type: ignore[assignment]
    try:
        report.print_predictions(predictions)
    finally:
        report._console = original  # type: ignore[assignment]
    shown = console.export_text()
    assert "a [bold red]great[/] film" in shown and "[/oops]" in shown
    assert "x \\x1b]0;title\\x07 y" in shown and "\x1b]0" not in shown


def test_output_onto_the_input_file_is_refused(cli, trained_model: Path, tmp_path: Path) -> None:
    """--output naming the --file (itself, a link to it, a table) replaced the texts by the predictions."""
    texts = tmp_path / "texts.txt"
    texts.write_text("good film\nbad movie\n")
    table = tmp_path / "table.csv"
    table.write_text("review\ngood film\n")
    (tmp_path / "link.txt").symlink_to(texts)
    for file, output in [(texts, texts), (texts, tmp_path / "link.txt"), (table, table)]:
        before = file.read_bytes()
        result = cli(["predict", "-m", trained_model, "--file", file, "--output", output])
        assert_bad_input(result, f"--output {output} is the --file itself")
        assert file.read_bytes() == before


def test_output_format_follows_the_file_name(cli, trained_model: Path, tmp_path: Path) -> None:
    """--output F.jsonl writes the JSON lines --json prints (it wrote a CSV into F.jsonl); a name promising a
    format --output does not write (.parquet, .tsv, .gz) is refused, not filled with CSV."""
    texts = tmp_path / "texts.txt"
    texts.write_text('good "film"\r\nbad movie\n\n\\ u\u2028x\n')
    expected = cli(["predict", "-m", trained_model, "--json", "--top-k", "2", "--file", texts]).stdout
    result = cli(
        ["predict", "-m", trained_model, "--top-k", "2", "--file", texts, "-o", tmp_path / "o.jsonl"]
    )
    assert result.exit_code == 0, result.stderr
    written = (tmp_path / "o.jsonl").read_text(encoding="utf-8")
    assert written == expected and len(predictions(written)) == 4
    for name in ("o.parquet", "o.tsv", "o.csv.gz"):
        result = cli(["predict", "-m", trained_model, "--file", texts, "-o", tmp_path / name])
        assert_bad_input(result, "name the file .csv or .jsonl")
        assert not (tmp_path / name).exists()


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_a_dash_alone_reads_standard_input(cli, trained_model: Path, command: str) -> None:
    """`cmd | sentiment predict -` classified the text "-" and ignored the input."""
    result = cli([command, "-m", trained_model, "--json", "-"], input="good film\nbad movie\n")
    assert result.exit_code == 0, result.stderr
    assert [p["text"] for p in predictions(result.stdout)] == ["good film", "bad movie"]


def test_a_directory_as_file_says_so(cli, trained_model: Path, tmp_path: Path) -> None:
    result = cli(["predict", "-m", trained_model, "--file", tmp_path])
    assert_bad_input(result, f"--file {tmp_path} is a directory: give --output DIR")


def test_a_utf16_table_is_read(cli, trained_model: Path, tmp_path: Path) -> None:
    """A UTF-16 table (Excel's "Unicode Text") is read by its byte-order mark, as its UTF-8 twin (it was
    "not UTF-8 text (line 1, byte 0: b'\\xff')")."""
    rows = "review,sentiment\ngood film,positive\nbad movie,negative\n"
    for encoding in ("utf-8", "utf-16"):
        (tmp_path / f"{encoding}.csv").write_bytes(rows.encode(encoding))
    outputs = {}
    for encoding in ("utf-8", "utf-16"):
        table = tmp_path / f"{encoding}.csv"
        for command, option in (("eval", "--data"), ("predict", "--file")):
            result = cli([command, "-m", trained_model, option, table, "--json"])
            assert result.exit_code == 0, result.stderr
            lines = [json.loads(line) for line in result.stdout.replace(str(table), "TABLE").splitlines()]
            outputs[encoding, command] = [
                {k: v for k, v in line.items() if not k.endswith("seconds")} for line in lines
            ]
    for command in ("eval", "predict"):
        assert outputs["utf-16", command] == outputs["utf-8", command], command


def test_a_closed_standard_stream(trained_model: Path, tmp_path: Path) -> None:
    """`sentiment predict --file - <&-` and `... >&-`: Python makes a closed stream None; reading it was
    `unexpected AttributeError` (exit 1), and writing to it a traceback at exit."""
    closed_stdin = run_cli("predict", "-m", trained_model, "--file", "-", preexec_fn=lambda: os.close(0))
    assert closed_stdin.returncode == 2
    assert closed_stdin.stderr == "error: no text to classify in standard input\n"
    out = tmp_path / "out.csv"
    closed_stdout = run_cli("predict", "-m", trained_model, "good", "-o", out, preexec_fn=lambda: os.close(1))
    assert closed_stdout.returncode == 0 and "Traceback" not in closed_stdout.stderr, closed_stdout.stderr
    assert out.read_text().splitlines()[1].startswith('"good",')


def test_an_endless_input_under_a_memory_limit(trained_model: Path) -> None:
    """`predict --file /dev/zero` under `ulimit -v` ran out of memory reading it: `unexpected MemoryError`."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    result = run_cli("predict", "-m", trained_model, "--file", "/dev/zero", preexec_fn=limit)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "error: /dev/zero does not fit in memory (is it an endless stream?); give a smaller file\n"
    )


def test_a_table_that_is_a_pipe_is_named_as_one(cli, trained_model: Path, tmp_path: Path) -> None:
    """A named FIFO as a table (eval --data, predict --file) was "the file is empty": a pipe has no size."""
    fifo = tmp_path / "scores.csv"
    os.mkfifo(fifo)
    for args in (["eval", "--data", fifo], ["predict", "--file", fifo]):
        result = cli([args[0], "-m", trained_model, *args[1:]])
        assert_bad_input(result, f"{fifo} is not a regular file (a pipe?)")


def test_config_validate_does_not_wait_on_a_pipe(cli, tiny_config: Path, tmp_path: Path) -> None:
    """`config validate` opened a FIFO data.path to see that it is readable, and waited for a writer forever;
    it now makes the checks reading makes (datafiles.checked_format), as train does."""
    import threading

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    results = []
    worker = threading.Thread(
        target=lambda: results.append(cli(["config", "validate", tiny_config, "--set", f"data.path={fifo}"])),
        daemon=True,
    )
    worker.start()
    worker.join(60)
    if not results:  # release the waiting open() so the thread ends, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("config validate waited on the FIFO")
    assert_bad_input(results[0], f"{fifo} is not a regular file (a pipe?)")
