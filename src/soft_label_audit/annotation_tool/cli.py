"""Admin command line of the annotation tool (the only way to reach admin functions).

    python -m soft_label_audit.annotation_tool init           # schema + items from Kedro outputs
    python -m soft_label_audit.annotation_tool add-annotator  # prints a personal link
    python -m soft_label_audit.annotation_tool serve          # web server on 127.0.0.1:8050
    python -m soft_label_audit.annotation_tool serve --host 0.0.0.0 --allow-remote \
        --allowed-host annotate.example.org                    # behind a TLS reverse proxy
    python -m soft_label_audit.annotation_tool status
    python -m soft_label_audit.annotation_tool export --out data/01_raw/annotation_tool_votes.csv
    python -m soft_label_audit.annotation_tool revoke ann_1a2b3c4d

Paths are relative to the working directory (run it from the project root). ``--db`` takes a
SQLite file path or a SQLAlchemy URL (``postgresql+psycopg://user@host:5432/dbname``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

from soft_label_audit.annotation_tool import db, store

if TYPE_CHECKING:  # pandas serves init and export only: `serve` starts without it
    import pandas as pd

DEFAULT_DB = "data/annotation_tool.db"
DEFAULT_STUDY_ITEMS = "data/03_primary/study_items.parquet"
DEFAULT_DIGITS = "data/02_intermediate/digits.parquet"
DEFAULT_EXPORT = "data/01_raw/annotation_tool_votes.csv"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050

#: serve: waitress threads per process and processes (load benchmark, docs/annotation_tool.md:
#: a second thread in a process added CPU per vote and a long latency tail, a second process
#: on a 2-core machine added throughput); one process where os.fork is missing
DEFAULT_THREADS = 1
DEFAULT_WORKERS = 2 if hasattr(os, "fork") else 1
#: waitress: most simultaneous connections per process, and seconds before an idle one is
#: closed (docs/annotation_tool.md, "Connections"): every open connection is polled on each
#: turn of waitress's loop (1,000 idle ones added 1.6 ms to each request, 4,000 added 17 ms),
#: and connections beyond the limit wait until idle ones time out (29.8 s at 30 s, 9.7 s at
#: 10 s, measured with 1,100 idle sockets on 2 workers)
DEFAULT_CONNECTION_LIMIT = 500
DEFAULT_CHANNEL_TIMEOUT = 10
#: waitress: largest request header block (a token header is under 200 bytes)
MAX_HEADER_BYTES = 16 * 1024

db_option = click.option(
    "--db",
    "db_path",
    default=DEFAULT_DB,
    show_default=True,
    help="SQLite database file, or a SQLAlchemy URL: postgresql+psycopg://user@host/dbname",
)


def file_option(name: str, default: str | None, help: str):
    """A file path option (parquet or csv by suffix; directories refused)."""
    return click.option(
        name,
        default=default,
        show_default=default is not None,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help,
    )


def count_option(name: str, default: int, most: int, help: str):
    """A ``serve`` option taking a whole number from 1 to ``most``."""
    return click.option(
        name, default=default, show_default=True, type=click.IntRange(1, most), help=help
    )


def setting_option(name: str, kind: click.ParamType, help: str):
    """An ``init`` option for one study setting (``--votes-per-item`` sets ``votes_per_item``):
    unset keeps the stored value; the help ends with the default of :class:`store.Settings`."""
    default = getattr(store.Settings, name.removeprefix("--").replace("-", "_"))
    return click.option(name, type=kind, default=None, help=f"{help} [default: {default:g}]")


def _is_url(db_path: str) -> bool:
    return "://" in str(db_path)


def unreachable(db_path: str, exc: OperationalError) -> click.ClickException:
    """One line naming the database (without its password), the driver's reason, and the
    fix, for a database that cannot be opened (a PostgreSQL server that does not answer)."""
    try:
        where = make_url(db.database_url(db_path)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - the message must not fail on an odd --db
        where = "the database"
    reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
    if _is_url(db_path):
        fix = "start the PostgreSQL server there or correct --db"
    else:
        fix = "check the path and its permissions"
    return click.ClickException(f"cannot reach {where}: {reason}; {fix}")


def _open_existing(db_path: str, pool_size: int = 10):
    if not _is_url(db_path) and not Path(db_path).exists():
        raise click.ClickException(f"{db_path} does not exist; create it with the init command")
    try:
        engine = db.open_database(db_path, pool_size=pool_size)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except OperationalError as exc:
        raise unreachable(db_path, exc) from None
    return engine


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def waitress_settings(
    host: str, port: int, threads: int, connection_limit: int, channel_timeout: int
) -> dict:
    """The waitress adjustments ``serve`` uses: the app's body limit enforced by waitress
    before the body is read, bounded headers, connections and idle time."""
    from soft_label_audit.annotation_tool.web import MAX_BODY_BYTES

    return {
        "host": host,
        "port": port,
        "threads": threads,
        "ident": "annotation-tool",
        "max_request_body_size": MAX_BODY_BYTES,
        "max_request_header_size": MAX_HEADER_BYTES,
        "connection_limit": connection_limit,
        "channel_timeout": channel_timeout,
        "cleanup_interval": max(1, min(30, channel_timeout)),
        "asyncore_use_poll": True,
    }


def quiet_queue_warnings() -> None:
    """Turn off waitress's "Task queue depth is N" warning. With a few threads (what the
    vote path needs, see docs/annotation_tool.md) requests queue whenever more annotators
    vote at once, so it fired on nearly every request under load, and waitress logs it while
    holding the lock its threads take work under: about a fifth of the server's profile
    samples in the load benchmark."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise click.ClickException(
            f"{path} does not exist; run `kedro run --pipeline digits` first or pass the path"
        )
    import pandas as pd

    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or parquet (by suffix) through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@click.group(help="Annotation tool: collect human votes on the study items.")
def main() -> None:
    pass


@main.command(help="Create or migrate the database, load the items and set the study settings.")
@db_option
@file_option("--study-items", DEFAULT_STUDY_ITEMS, "study_items (parquet or csv)")
@file_option("--digits", DEFAULT_DIGITS, "digits table with images")
@click.option(
    "--attention-checks",
    default=40,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="number of easy MNIST images (outside the study) used as attention checks; an "
    "annotator gets at most attention-every x this many study items",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="seed of the attention-check draw"
)
@setting_option("--votes-per-item", click.IntRange(1), "distinct annotators per study item")
@setting_option(
    "--attention-every", click.IntRange(1), "one attention check after every N study votes"
)
@setting_option(
    "--max-items-per-annotator", click.IntRange(0), "cap on study items per annotator, 0 for none"
)
@setting_option("--lease-seconds", click.FloatRange(min=1), "how long a shown item stays reserved")
@setting_option(
    "--min-response-time", click.FloatRange(0, 3600), "seconds; faster answers are refused"
)
@setting_option(
    "--min-attention-accuracy",
    click.FloatRange(0, 1),
    "export leaves out annotators below this attention-check accuracy",
)
@setting_option(
    "--max-fast-share",
    click.FloatRange(0, 1),
    "export leaves out annotators more of whose votes than this share the server saw "
    "answered in under --min-response-time",
)
@click.option(
    "--attention-seed",
    type=click.IntRange(0, 2**62),
    default=None,
    help="seed of the attention-check positions [default: a random one drawn when the "
    "database is created]",
)
def init(
    db_path,
    study_items,
    digits,
    attention_checks,
    seed,
    votes_per_item,
    attention_every,
    max_items_per_annotator,
    lease_seconds,
    min_response_time,
    min_attention_accuracy,
    max_fast_share,
    attention_seed,
) -> None:
    from soft_label_audit.annotation_tool.item_sets import build_annotation_items

    frame = build_annotation_items(
        _read_table(study_items),
        _read_table(digits),
        n_attention_checks=attention_checks,
        seed=seed,
    )
    try:
        engine = db.make_engine(db_path)
        applied = db.migrate(engine)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except OperationalError as exc:
        raise unreachable(db_path, exc) from None
    counts = store.insert_items(engine, frame)
    settings = store.write_settings(
        engine,
        votes_per_item=votes_per_item,
        attention_every=attention_every,
        max_items_per_annotator=max_items_per_annotator,
        lease_seconds=lease_seconds,
        min_response_time=min_response_time,
        min_attention_accuracy=min_attention_accuracy,
        max_fast_share=max_fast_share,
        attention_seed=attention_seed,
    )
    n_checks = int(frame["is_attention_check"].sum())
    click.echo(
        f"database {db.describe(engine)}: schema version {db.LATEST_VERSION}"
        + (f" (applied migrations {applied})" if applied else "")
    )
    click.echo(
        f"items: {counts['added']} added, {counts['kept']} already present "
        f"({len(frame) - n_checks} study items, {n_checks} attention checks)"
    )
    click.echo(f"settings: {settings}")


@main.command("add-annotator", help="Create annotators and print their personal links.")
@db_option
@click.option("--count", default=1, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--base-url",
    default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
    show_default=True,
    help="address annotators reach the server at",
)
def add_annotator(db_path, count, base_url) -> None:
    engine = _open_existing(db_path)
    for _ in range(count):
        annotator, token = store.add_annotator(engine)
        click.echo(f"{annotator.pseudonym}\t{base_url.rstrip('/')}/a/{token}")


@main.command(
    help="Deactivate an annotator: their link stops working, their votes stay, and "
    "the item they held is released."
)
@db_option
@click.argument("pseudonym")
def revoke(db_path, pseudonym) -> None:
    engine = _open_existing(db_path)
    released = store.revoke(engine, pseudonym)
    if released is None:
        raise click.ClickException(f"no annotator {pseudonym!r}")
    click.echo(f"revoked {pseudonym} ({released} open reservation(s) released)")


@main.command(help="Write the votes as raw_annotations (long format) for the annotation pipeline.")
@db_option
@file_option("--out", DEFAULT_EXPORT, ".csv or .parquet")
@file_option(
    "--attention-out", None, "attention-check answers [default: <out stem>_attention_checks.csv]"
)
@file_option(
    "--all-votes-out",
    None,
    "every vote with both response times and why it is left out "
    "[default: <out stem>_all_votes.csv]",
)
@click.option(
    "--min-attention-accuracy",
    default=None,
    type=click.FloatRange(0, 1),
    help="leave out annotators whose attention-check accuracy is below this, or who "
    "answered no check [default: the study setting; 0 turns this rule off]",
)
@click.option(
    "--max-fast-share",
    default=None,
    type=click.FloatRange(0, 1),
    help="leave out annotators more of whose votes than this share were faster than "
    "min_response_time on the server's clock [default: the study setting; 1 turns this "
    "rule off]",
)
def export(
    db_path, out, attention_out, all_votes_out, min_attention_accuracy, max_fast_share
) -> None:
    engine = _open_existing(db_path)
    frames = store.export_frames(
        engine, min_attention_accuracy=min_attention_accuracy, max_fast_share=max_fast_share
    )
    attention_out = attention_out or out.with_name(f"{out.stem}_attention_checks.csv")
    all_votes_out = all_votes_out or out.with_name(f"{out.stem}_all_votes.csv")
    _write_atomic(frames["raw_annotations"], out)
    _write_atomic(frames["attention_checks"], attention_out)
    _write_atomic(frames["all_votes"], all_votes_out)
    raw, summary, rules = frames["raw_annotations"], frames["annotators"], frames["rules"]
    click.echo(
        f"{len(raw)} votes on {raw['item_id'].nunique()} items by "
        f"{raw['annotator_id'].nunique()} annotators -> {out}"
    )
    click.echo(f"{len(frames['attention_checks'])} attention-check answers -> {attention_out}")
    click.echo(f"{len(frames['all_votes'])} votes with both response times -> {all_votes_out}")
    dropped = summary.loc[~summary["kept"]]
    click.echo(
        f"left out (attention accuracy < {rules.min_attention_accuracy:g} or no check "
        f"answered; more than {rules.max_fast_share:.0%} of votes under "
        f"{rules.min_response_time:g} s on the server's clock): "
        + (
            ", ".join(f"{r.annotator_id} ({r.left_out})" for r in dropped.itertuples())
            if len(dropped)
            else "none"
        )
    )
    click.echo(summary.drop(columns="left_out").to_string(index=False))


@main.command(help="Counts of items, votes and annotators, and the settings in force.")
@db_option
def status(db_path) -> None:
    engine = _open_existing(db_path)
    for key, value in store.study_status(engine).items():
        click.echo(f"{key}: {value}")


@main.command(
    help="Serve the annotator pages (waitress). Bound to 127.0.0.1 unless --host "
    "and --allow-remote say otherwise."
)
@db_option
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@count_option(
    "--threads",
    DEFAULT_THREADS,
    64,
    "waitress threads per process (more only add contention: docs/annotation_tool.md)",
)
@count_option(
    "--workers",
    DEFAULT_WORKERS,
    64,
    "server processes sharing the port (POSIX): one process serves on one core at most",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="required to bind a non-loopback address; serve it only behind a TLS "
    "reverse proxy (docs/annotation_tool.md)",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Host header value the server answers to (repeatable; '.example.org' "
    "allows subdomains) [default: 127.0.0.1, localhost, [::1]]",
)
@count_option(
    "--connection-limit", DEFAULT_CONNECTION_LIMIT, 10_000, "most simultaneous connections"
)
@count_option(
    "--channel-timeout",
    DEFAULT_CHANNEL_TIMEOUT,
    3600,
    "seconds before an idle connection is closed",
)
def serve(
    db_path,
    host,
    port,
    threads,
    workers,
    allow_remote,
    allowed_hosts,
    connection_limit,
    channel_timeout,
) -> None:
    import waitress

    from soft_label_audit.annotation_tool.web import create_app

    loopback = is_loopback(host)
    if not loopback and not allow_remote:
        raise click.ClickException(
            f"--host {host} is reachable from other machines; pass --allow-remote (and "
            "--allowed-host NAME) to do that on purpose, behind a TLS reverse proxy"
        )
    if not loopback and not allowed_hosts:
        raise click.ClickException(
            "--allow-remote needs at least one --allowed-host: the host name annotators' "
            "links use (the reverse proxy must pass it on in the Host header)"
        )
    engine = _open_existing(db_path, pool_size=threads + 2)
    with db.reading(engine) as conn:  # a count, not the whole status: restarts stay quick
        n_items = store.n_study_items(conn)
    if not n_items:
        raise click.ClickException(
            f"{db.describe(engine)} holds no items; run the init command first"
        )
    hosts = list(allowed_hosts) or None
    settings = waitress_settings(host, port, threads, connection_limit, channel_timeout)
    quiet_queue_warnings()
    if workers > 1 and not hasattr(os, "fork"):
        raise click.ClickException("--workers above 1 needs a POSIX system (os.fork)")
    click.echo(
        f"serving {n_items} items from {db.describe(engine)} on "
        f"http://{host}:{port} for host names {hosts or 'loopback'}"
        + (f" with {workers} worker processes" if workers > 1 else "")
        + " (Ctrl+C stops)",
        err=True,
    )
    if workers == 1:
        waitress.serve(create_app(engine, allowed_hosts=hosts), **settings)
        return
    from soft_label_audit.annotation_tool import serving

    engine.dispose()  # each worker opens its own connections after the fork
    try:
        sock = serving.bind(settings.pop("host"), settings.pop("port"))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None

    def run_worker(_index: int) -> None:
        worker_engine = db.open_database(db_path, pool_size=threads + 2, shared_writes=True)
        waitress.serve(create_app(worker_engine, allowed_hosts=hosts), sockets=[sock], **settings)

    try:
        serving.supervise(run_worker, workers, log=lambda m: click.echo(m, err=True))
    except serving.WorkerFailed as exc:
        raise click.ClickException(str(exc)) from None
