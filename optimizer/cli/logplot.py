"""`evopt log plot --day DATE [--out FILE.png] [--charger SN]`: draw a real day from the log.

The drawing is optimizer.simulate.dayplot; this module picks the rows (the site's local day,
one charger) and says plainly when there is nothing to draw (exit 1), never an empty picture.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from optimizer.cli import logsim
from optimizer.cli.context import Context
from optimizer.config import Config
from optimizer.decisions import review
from optimizer.enlighten.errors import ConfigError

__all__ = ["log_plot"]

_RELATIVE = {"today": 0, "yesterday": 1}


def _zone(config: Config) -> tzinfo:
    if config.site.timezone:
        return ZoneInfo(config.site.timezone)
    return datetime.now().astimezone().tzinfo or UTC


def _resolve(day: date | str, zone: tzinfo) -> date:
    if isinstance(day, date):
        return day
    return (datetime.now(zone) - timedelta(days=_RELATIVE[day])).date()


async def log_plot(ctx: Context) -> int:
    # Imported here: matplotlib is slow to import, and only this action needs it.
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from optimizer.simulate import dayplot  # noqa: PLC0415

    zone = _zone(ctx.config)
    day = _resolve(ctx.args.day, zone)
    start, end = dayplot.day_bounds(day, zone)
    wanted: str | None = getattr(ctx.args, "charger", None)
    with logsim.open_log(ctx, actions=("show", "stats", "plot")) as store:
        rows = review.query(
            store,
            since=start.astimezone(UTC),
            until=end.astimezone(UTC),
            charger=wanted,
            run=getattr(ctx.args, "run", None),
            limit=None,
        )
        where = store.path
        rows = [row for row in rows if row.charger_sn is not None]
        chargers = sorted({row.charger_sn for row in rows if row.charger_sn})
        buckets: list[tuple[datetime, float | None, float | None]] = []
        if getattr(ctx.args, "simulation", None) is not None and len(chargers) == 1:
            runs = sorted({row.run_id for row in rows})
            buckets = store.simulation_buckets(
                runs, chargers[0], start.astimezone(UTC), end.astimezone(UTC)
            )
    if not rows:
        who = f" for charger {wanted}" if wanted else ""
        raise ConfigError(
            f"no decisions on {day.isoformat()}{who} in {where}",
            hint="`evopt log stats` lists the days that have some",
        )
    if len(chargers) > 1:
        raise ConfigError(
            f"{day.isoformat()} has decisions for {len(chargers)} chargers ({', '.join(chargers)})",
            hint="pick one with --charger SN",
        )
    points = dayplot.with_buckets(dayplot.day_points(rows), buckets)
    out = Path(ctx.args.out or f"evopt-{day.isoformat()}.png")
    fig = dayplot.draw_day(points, day, zone, charger=chargers[0])
    try:
        fig.savefig(out, format="png")
    except OSError as err:
        raise ConfigError(f"{out}: cannot write ({err.strerror or err})") from err
    finally:
        plt.close(fig)
    shown = f"{len(rows)} decisions" + (f" and {len(buckets)} simulated buckets" if buckets else "")
    print(f"plot: {out} ({shown} of charger {chargers[0]})")
    return 0
