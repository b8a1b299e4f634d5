"""The ``numeral`` command: a thin layer over the Python API.

Every error numeral raises on purpose is printed as one line (``numeral: error:
...``) with exit status 2; data warnings as one line each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from numeral.errors import NumeralError
from numeral.results import probability as parse_probability
from numeral.results import with_check

EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numeral",
        description="Handwritten numeral recognition with a NumPy deep network.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model and write its report")
    p.add_argument("--config", default=None, help="preset name or TOML file (default: baseline)")
    add_data_args(p)
    p.add_argument("--split", choices=["random", "sheet"], help="override the config's split")
    p.add_argument("--epochs", type=int,
                   help="override the config's number of epochs (of every committee member)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key (value parsed as TOML), repeatable")
    p.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", type=Path, metavar="DIR",
                   help="continue the interrupted run in DIR")
    p.add_argument("--quiet", action="store_true", help="log lines instead of a progress bar")
    p.add_argument("--live", nargs="?", type=int, const=8001, metavar="PORT",
                   help="serve a page on 127.0.0.1:PORT (default 8001; 0: any free port) that "
                        "shows the run after every epoch")
    p.add_argument("--tensorboard", type=Path, metavar="DIR",
                   help="write TensorBoard event files to DIR (tensorboard --logdir DIR)")

    p = sub.add_parser("evaluate", help="score a model on a dataset")
    p.add_argument("model", type=Path)
    add_data_args(p)
    p.add_argument("--split", choices=["random", "sheet", "all"],
                   help="which part of --data to score (default: the model's own test split)")
    p.add_argument("--json", action="store_true", help="print the full evaluation as JSON")

    p = sub.add_parser("predict", help="recognise numerals in image files")
    p.add_argument("paths", nargs="+", type=Path, metavar="[MODEL.npz] IMAGE",
                   help="a model file first (else the shipped model), then image files or "
                        "folders of images")
    p.add_argument("--model", help="model file or shipped name (default: tibetan)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--min-confidence", type=probability, metavar="P",
                   help="flag numerals read less surely than P (0-1) for a person to check")

    p = sub.add_parser("read", help="read whole numbers (several numerals on one line)")
    p.add_argument("images", nargs="+", type=Path,
                   help="photos, scans or drawings: files, folders, zips or glob patterns")
    p.add_argument("--model", default="tibetan",
                   help="model file or shipped name (default: tibetan)")
    p.add_argument("--json", action="store_true", help="everything, as JSON")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="stream the results to FILE (.jsonl or .csv), one line per image; "
                        "rerun to continue: images already in FILE are skipped")
    p.add_argument("--format", choices=["jsonl", "csv"], help="FILE's format (default: suffix)")
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: all cores)")
    p.add_argument("--address", metavar="HEAD:PORT",
                   help="read on a Ray cluster ('local': start one on this machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--min-confidence", type=probability, metavar="P",
                   help="flag numbers whose confidence (calibrated: the chance that every "
                        "numeral is right) is under P (0-1) for a person to check")

    p = sub.add_parser("report", help="rebuild DIR/report.html from a finished run")
    p.add_argument("run", type=Path)

    p = sub.add_parser("compare", help="put several runs side by side")
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=Path("runs/compare"))

    p = sub.add_parser("gradcheck", help="check back-propagation against finite differences")
    p.add_argument("--hidden", default="5,4", help="hidden widths, e.g. 5,4 (default)")
    p.add_argument("--activation", default="all", help="an activation name, or 'all'")
    p.add_argument("--l1", type=float, default=1e-3)
    p.add_argument("--l2", type=float, default=1e-2)
    p.add_argument("--inputs", type=int, default=6)
    p.add_argument("--samples", type=int, default=5)

    p = sub.add_parser("data", help="dataset tools")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    d = data_sub.add_parser("download", help="fetch TibetanMNIST into the user cache")
    d.add_argument("--url", default=None)
    d.add_argument("--dest", type=Path, default=None)
    d = data_sub.add_parser("info", help="load a dataset and summarise it")
    d.add_argument("path", nargs="?", default=None)

    sub.add_parser("presets", help="list the shipped training presets")

    p = sub.add_parser("export", help="the model as ONNX, or as a page that needs no server")
    p.add_argument("model", type=Path)
    p.add_argument("--onnx", type=Path, metavar="OUT.onnx", help="write one ONNX graph")
    p.add_argument("--web", type=Path, metavar="DIR",
                   help="write a static draw-and-recognise site running the model in the browser")

    p = sub.add_parser("sweep", help="train many variants on Ray, scored on validation data",
                       description="Train every combination (or random draws) of a config's "
                       "settings as separate runs on Ray, each scored on a validation split "
                       "carved from the training data. Running it again skips finished trials.")
    p.add_argument("variants", nargs="*", metavar="'LABEL: KEY=VALUE ...'",
                   help="labelled variants (default: the config's [study] tables, if any)")
    p.add_argument("--config", default=None, help="preset name or TOML file (default: baseline)")
    add_data_args(p)
    p.add_argument("--split", choices=["random", "sheet"], help="override the config's split")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a config key for every trial (value parsed as TOML), repeatable")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="try each value (every combination of the --grid keys), repeatable")
    p.add_argument("--random", action="append", default=[], metavar="KEY=LOW:HIGH[:log]",
                   help="draw the key uniformly (or log-uniformly) --trials times")
    p.add_argument("--trials", type=int, default=0, help="how many --random draws")
    p.add_argument("--draw-seed", type=int, default=0, help="seed of the --random draws")
    p.add_argument("--seeds", type=int, default=1, help="train each setting with K seeds")
    p.add_argument("--metric", choices=["val_error", "val_loss"], default="val_error")
    p.add_argument("--out", type=Path, help="sweep folder (default: runs/sweep-<config>)")
    p.add_argument("--address", help="join this Ray cluster (default: $RAY_ADDRESS, else a "
                                     "local Ray on this machine's cores)")
    p.add_argument("--cpus-per-trial", type=int, default=1,
                   help="CPUs (and BLAS threads) each trial gets (default 1)")
    p.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    p.add_argument("--committee", action="append", nargs="?", const="", metavar="TRIAL+TRIAL",
                   help="score committees of finished trials: per setting and overall, and "
                        "this mix of trials (repeatable); alone with --out, on a finished sweep")
    p.add_argument("--include", action="append", default=[], type=Path, metavar="SWEEP_DIR",
                   help="with --committee: also the trials of this other sweep (same split)")
    p.add_argument("--hard", type=Path, metavar="PNG",
                   help="with --committee: draw the validation images most trials misread")

    p = sub.add_parser("serve", help="the draw-a-numeral page and JSON API")
    p.add_argument("model", nargs="?", default="tibetan",
                   help="model file or shipped name (default: tibetan, the shipped model)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1,
                   help="processes serving the model (default 1; one per core for a crowd)")
    return parser


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset: folder, .zip, .npz or IDX file "
                                  "(default: $NUMERAL_DATA, then the downloaded copy)")
    p.add_argument("--train", help="training .npz (with --test instead of --data)")
    p.add_argument("--test", help="test .npz")


# ------------------------------------------------------------------ commands
def cmd_train(args: argparse.Namespace) -> int:
    from numeral.train.config import load_config, with_epochs
    from numeral.train.experiment import DataSource, resumed_run, run_experiment

    overrides = list(args.set)
    if args.split:
        overrides.append(f'split="{args.split}"')
    source = DataSource(args.data, args.train, args.test)
    if args.resume:
        out = args.resume
        config, saved = resumed_run(out, overrides)
        if not (args.data or args.train):
            source = saved
    else:
        config = load_config(args.config or "baseline", overrides)
        out = args.out or Path("runs") / config.name
    if args.epochs is not None:  # every network of a committee, whatever its members say
        config = with_epochs(config, args.epochs)
    log = print if args.quiet else _log_above_bar
    observers: list[Any] = []
    if args.tensorboard:
        from numeral.train.watch import TensorBoardLog, require_tensorboardx

        require_tensorboardx()  # says how to install it before any work
        observers.append(TensorBoardLog(args.tensorboard))
    if args.live is not None:
        from numeral.serve.live import LiveView

        observers.append(LiveView(args.live, log=lambda line: print(line, flush=True)))
    if observers and config.study:
        raise NumeralError("--live and --tensorboard watch one run; a study trains several: "
                           "watch one variant with --set, or run the study as a sweep")
    try:
        report = run_experiment(config, source, out, resume=bool(args.resume),
                                progress=not args.quiet, log=log, observers=observers)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last finished epoch is saved in {out}/checkpoint.npz; "
              f"continue with: numeral train --resume {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for observer in observers:  # a run that stopped early stops its page too
            if hasattr(observer, "close"):
                observer.close()
    print(f"report: {report}")
    return 0


def _log_above_bar(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from numeral import load_model
    from numeral.train.evaluate import evaluation_table, score_model

    result = score_model(load_model(str(args.model)), args.data, train=args.train,
                         test=args.test, split=args.split)
    print(json.dumps(result, indent=1) if args.json else evaluation_table(result))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from numeral.predict import Recognizer, image_paths

    images = list(args.paths)
    model = args.model
    if model is None and images[0].suffix == ".npz":  # numeral predict MODEL.npz IMAGE ...
        model = str(images.pop(0))
    if not images:
        raise NumeralError(f"give the images to recognise after the model {model}")
    recognizer = Recognizer.from_file(model or "tibetan")
    results, failed = each_image(image_paths(images), recognizer.recognize_file)
    results = [with_check(r, args.min_confidence) for r in results]
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=1))
        return failed
    for r in results:
        if "error" in r:
            continue
        if r["label"] is None:
            print(f"{r['image']}: {r['reason']}{check_mark(r)}")
            continue
        top = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in r["top3"])
        print(f"{r['image']}: {r['class']}   (top 3: {top}){check_mark(r)}")
    return failed


def probability(text: str) -> float:
    """--min-confidence's value: a probability (:func:`numeral.results.probability`)."""
    try:
        return parse_probability(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_mark(result: dict[str, Any]) -> str:
    return "   CHECK: less sure than --min-confidence" if result.get("check") else ""


def each_image(paths: Sequence[Path], work: Any) -> tuple[list[dict[str, Any]], int]:
    """``work(path)`` for every image; one that cannot be read is named on stderr (and kept
    in the results as its error) and the others go on. Exit status 2 if any failed."""
    results: list[dict[str, Any]] = []
    for path in paths:
        try:
            results.append({"image": str(path), **work(path)})
        except NumeralError as exc:
            print(f"numeral: error: {exc}", file=sys.stderr)
            results.append({"image": str(path), "error": str(exc)})
    return results, EXIT_ERROR if any("error" in r for r in results) else 0


def cmd_read(args: argparse.Namespace) -> int:
    from numeral.archive import expand, read_archive, read_items

    if args.jobs is not None and args.jobs < 1:
        raise NumeralError(f"--jobs must be at least 1, not {args.jobs}")
    if args.out:
        try:
            counts = read_archive(args.images, args.out, model=args.model, jobs=args.jobs,
                                  address=args.address, fmt=args.format,
                                  progress=not args.quiet, log=_log_above_bar,
                                  min_confidence=args.min_confidence)
        except KeyboardInterrupt:
            print(f"\ninterrupted: the images read so far are in {args.out}; run the same "
                  "command again to read the others", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"{args.out}: {counts['read']} images read, {counts['failed']} unreadable"
              + (f", {counts['skipped']} already there" if counts["skipped"] else "")
              + (f", {counts['check']} to check (confidence under {args.min_confidence})"
                 if args.min_confidence is not None else ""))
        return EXIT_ERROR if counts["failed"] else 0
    results = []
    for r in read_items(expand(args.images), args.model, args.jobs, args.address):
        if "error" in r:
            print(f"numeral: error: {r['error']}", file=sys.stderr)
        results.append(with_check(r, args.min_confidence))
    failed = EXIT_ERROR if any("error" in r for r in results) else 0
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=1,
                         ensure_ascii=False))
        return failed
    for r in results:
        if "error" in r:
            continue
        if not r["text"]:
            print(f"{r['image']}: nothing read ({r['reason']}){check_mark(r)}")
            continue
        script = f" ({r['tibetan']})" if r.get("tibetan") else ""
        print(f"{r['image']}: {r['text']}{script}   confidence {r['confidence']:.0%}"
              f"{check_mark(r)}")
        for d in r["digits"]:
            top = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in d["top3"])
            print(f"    {d['class']} at {d['box']}   (top 3: {top})")
    return failed


def cmd_report(args: argparse.Namespace) -> int:
    from numeral.report import build_report

    print(f"report: {build_report(args.run)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from numeral.report import build_comparison

    print(f"report: {build_comparison(args.runs, args.out)}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from numeral.nn.gradcheck import PASSES, check_all

    try:
        hidden = tuple(int(h) for h in str(args.hidden).split(",") if h.strip())
    except ValueError:
        raise NumeralError(f"--hidden takes widths separated by commas, e.g. 5,4; not "
                           f"{args.hidden!r}") from None
    try:
        results = check_all(args.activation, hidden, args.inputs, args.samples, args.l1,
                            args.l2)
    except ValueError as exc:
        raise NumeralError(str(exc)) from None
    for name, result in results.items():
        print(f"{result.max_error:.2e}  {'ok' if result.max_error < PASSES else 'FAILED':6}  "
              f"{name}")
    return 0 if max(r.max_error for r in results.values()) < PASSES else 1


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "download":
        from numeral.data.download import URL, download

        path = download(args.url or URL, args.dest)
        print(f"TibetanMNIST is in {path}; train with: numeral train --data {path}")
        return 0
    from numeral.data import load, resolve_data_path

    ds = load(resolve_data_path(args.path))
    sheets = len(set(ds.groups[ds.groups >= 0].tolist()))
    print(f"{ds.source}: {len(ds)} images, {len(ds.class_names)} classes, {sheets} sheets")
    print("class counts: " + ", ".join(f"{k}: {v}" for k, v in ds.class_counts().items()))
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from numeral.train.config import load_config, presets

    for name in presets():
        print(f"{name:>15}  {load_config(name).description}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from numeral import load_model

    if not (args.onnx or args.web):
        raise NumeralError("say what to write: --onnx OUT.onnx, --web DIR, or both")
    model = load_model(str(args.model))
    if args.onnx:
        from numeral.export.onnx import export_onnx

        path = export_onnx(model, args.onnx)
        print(f"ONNX: {path} (input 'pixels' (n, {model.members[0].input_size}) in [0, 1], output "
              f"'probabilities' (n, {model.n_classes}))")
    if args.web:
        from numeral.export.web import export_web

        folder = export_web(model, args.web)
        print(f"page: {folder / 'index.html'} (static files: serve the folder, e.g. "
              f"python -m http.server -d {folder})")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from numeral.train import sweep as sw
    from numeral.train.config import load_config
    from numeral.viz import sweep_figure

    mixes = [m for m in args.committee or [] if m]
    asked = args.config or args.variants or args.grid or args.random or args.set
    if not asked:  # a finished sweep's committees
        if args.committee is None or args.out is None:
            raise NumeralError("give --config and what to sweep (--grid, --random, variants), "
                               "or --out DIR --committee to score a finished sweep's trials")
        folders = [args.out, *args.include]
        sweeps = [sw.load_sweep(folder) for folder in folders]  # clear errors for non-sweeps
        _committees(sweeps[0], folders, mixes, args.hard)
        return 0
    overrides = list(args.set) + ([f'split="{args.split}"'] if args.split else [])
    sweep = sw.plan_sweep(
        load_config(args.config or "baseline", overrides), data=args.data, train=args.train,
        test=args.test, out=args.out,
        variants=args.variants, grid=args.grid, random=args.random, trials=args.trials,
        seeds=args.seeds, draw_seed=args.draw_seed, metric=args.metric, mixes=mixes,
        other_sweeps=bool(args.include))
    sw.save_plan(sweep, {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in vars(args).items()})
    interrupted = False
    try:
        sw.run_sweep(sweep, sw.RayRunner(args.address, args.cpus_per_trial),
                     retry_failed=args.retry_failed)
    except KeyboardInterrupt:
        interrupted = True
    best = sw.finish(sweep, figure=sweep_figure)
    if interrupted:
        done = sum(sweep.result(t) is not None for t in sweep.trials)
        print(f"interrupted: {done} of {len(sweep.trials)} trials are finished and kept in "
              f"{sweep.out}; run the same command again to train the others", file=sys.stderr)
        return EXIT_INTERRUPTED
    if sweep.base.study:  # a study's comparison report over its trials
        from numeral.report import build_comparison

        runs = [sweep.out / t.name for t in sweep.trials if (sweep.out / t.name / "model.npz")
                .is_file()]
        if runs:
            print(f"report: {build_comparison(runs, sweep.out)}")
    if args.committee is not None:
        _committees(sweep, [sweep.out, *args.include], mixes, args.hard)
    return 0 if best is not None else 1  # failed trials are in the table, with their reasons


def _committees(sweep: Any, folders: list[Path], mixes: list[str], hard: Path | None) -> None:
    from numeral.train import sweep as sw
    from numeral.viz.figures import image_grid

    saved = sw.validation_probabilities(folders)
    print(sw.committee_report(saved, mixes))
    if hard is not None and sw.draw_hard_images(sweep, saved, hard, image_grid):
        print(f"gallery: {hard}")


def cmd_serve(args: argparse.Namespace) -> int:
    from numeral.serve import serve

    serve(args.model, host=args.host, port=args.port, workers=args.workers)
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "read": cmd_read,
    "report": cmd_report,
    "compare": cmd_compare,
    "gradcheck": cmd_gradcheck,
    "data": cmd_data,
    "presets": cmd_presets,
    "serve": cmd_serve,
    "sweep": cmd_sweep,
    "export": cmd_export,
}


def _one_line_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    print(f"numeral: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        return COMMANDS[args.command](args)
    except NumeralError as exc:
        print(f"numeral: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("numeral: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into a reader that stopped early, e.g. `| head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
