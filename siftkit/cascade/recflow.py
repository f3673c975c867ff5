"""Loader for the real RecFlow files (Liu et al., ICLR 2025; CC BY-SA 4.0) in the layout the LCRON code reads,
and a writer of that layout (used to make test fixtures from the simulator).

Layout under ``root`` (spec §6; field positions as the official LCRON datasets read them):

    all_stage/{date}.feather        one row per (request, item, stage): request_id, user_id, request_timestamp (ms),
                                    device_id, age, gender, province, video_id, rank_pos, rank_index, rerank_pos,
                                    rerank_index
    request_id_dict/{date}.pkl      {request_id: {"rank_pos"|"rank_neg"|"rerank_pos"|"rerank_neg"|"coarse_neg"|
                                    "prerank_neg": int array (n, 7)}}, columns video_id, author_id, duration,
                                    category_level_two, upload_type, upload_timestamp (s), category_level_one
    seq_effective_50_dict/{date}.pkl {request_id: int array (50, 8)}, columns video_id, author_id,
                                    category_level_two, category_level_one, upload_type, _, _, timestamp (> 0 = valid)
    others/id_cnt.pkl               {field: vocabulary size}; note the key " category_level_two" (leading space)

Three hooks, as in ``datasets``: :func:`info` (schema), :func:`splits` (dates per split) and :func:`load` (requests).
Ids are remapped to dense ranges fitted on the loaded days (pitfall 8: real vocabularies hold 82 M videos, about
0.93 B parameters per model; remapping keeps only the ids that occur). Requests that lack 10 items in any group are
dropped [ours: upstream pads and masks them, pitfall 6]. RecFlow ships pickles (``request_id_dict/``, ``seq_effective_50_dict/``); they can run code when read, so
:func:`load` refuses them unless called with ``trust_pickle=True`` (CLI: ``--trust-pickle``).
"""

from __future__ import annotations

import datetime as _dt
import pickle
from pathlib import Path

import numpy as np

from siftkit.cascade.data import CascadeData
from siftkit.core.errors import InputError

GROUPS = {2: ["rank_pos", "rank_neg", "coarse_neg", "prerank_neg"],
          3: ["rerank_pos", "rerank_neg", "rank_neg", "coarse_neg", "prerank_neg"]}
DEFAULT_INDEX = {2: [None, 23, 24, 25], 3: [None, 22, 23, 24, 25]}
TZ = _dt.timezone(_dt.timedelta(hours=8))  # Beijing time for hour/weekday features [ours: upstream uses localtime]
TEST_DATE = "2024-02-04"


def info() -> dict:
    """Schema: the feature fields per table."""
    return {"ctx": ["weekday", "hour", "minute"], "user": ["user_id", "device_id", "gender", "age", "province"],
            "item": ["video_id", "author_id", "category_level_two", "category_level_one", "upload_type",
                     "upload_weekday", "upload_hour", "upload_minute"],
            "seq": ["video_id", "author_id", "category_level_two", "category_level_one", "upload_type"]}


def splits(root: str | Path, test_date: str = TEST_DATE) -> dict[str, list[str]]:
    """Dates found under ``all_stage/``: every date before ``test_date`` trains, ``test_date`` tests."""
    folder = Path(root) / "all_stage"
    if not folder.is_dir():
        raise InputError("RecFlow folder has no all_stage/ sub-folder", root)
    dates = sorted(p.stem for p in folder.glob("*.feather"))
    return {"train": [d for d in dates if d < test_date], "test": [d for d in dates if d == test_date]}


def _pkl(path: Path, trust_pickle: bool):
    if not path.exists():
        raise InputError("missing RecFlow file", path)
    if not trust_pickle:
        raise InputError("is a pickle, which can run code when read; pass --trust-pickle (trust_pickle=True) "
                         "if you trust this RecFlow copy", path)
    with open(path, "rb") as f:
        return pickle.load(f)


class _Remap:
    """Dense re-indexing of raw ids: 0 = padding/unknown, known ids 1..V (fitted on first sight while ``grow``)."""

    def __init__(self):
        self.ids: dict[int, int] = {}
        self.grow = True

    def __call__(self, raw) -> np.ndarray:
        raw = np.asarray(raw).ravel()
        out = np.empty(len(raw), np.int32)
        for i, x in enumerate(raw.tolist()):
            v = self.ids.get(x)
            if v is None:
                v = len(self.ids) + 1 if self.grow else 0
                if self.grow:
                    self.ids[x] = v
            out[i] = v
        return out


def _time_fields(ts_seconds: np.ndarray) -> np.ndarray:
    """(n,) unix seconds → (n, 3) weekday 1..7, hour 1..24, minute 1..60."""
    out = np.zeros((len(ts_seconds), 3), np.int32)
    for i, t in enumerate(np.asarray(ts_seconds).tolist()):
        d = _dt.datetime.fromtimestamp(int(t), TZ)
        out[i] = (d.weekday() + 1, d.hour + 1, d.minute + 1)
    return out


def files(root: str | Path, dates: list[str]) -> list[Path]:
    """The RecFlow files :func:`load` reads for ``dates`` (for provenance hashes)."""
    root = Path(root)
    return [p for d in dates for p in (root / "all_stage" / f"{d}.feather", root / "request_id_dict" / f"{d}.pkl",
                                       root / "seq_effective_50_dict" / f"{d}.pkl")]


def load(root: str | Path, dates: list[str], n_stages: int = 2, seq_len: int = 50, max_requests: int | None = None,
         remaps: dict | None = None, trust_pickle: bool = False) -> tuple[CascadeData, dict]:
    """Read RecFlow days into :class:`CascadeData` (one day index per date, in date order).

    Args:
        root: the RecFlow folder.
        dates: days to read, e.g. ``splits(root)["train"]``.
        n_stages: 2 (N = 40) or 3 (N = 50, labels from rerank_index).
        seq_len: keep the last ``seq_len`` behaviour items.
        max_requests: stop after this many requests per day.
        remaps: the id maps of a previous call (pass the train maps when loading the test day; unseen ids → 0).
        trust_pickle: allow reading RecFlow's pickle files (refused by default: pickles can run code).
    Returns:
        (data, remaps).
    """
    root = Path(root)
    if not trust_pickle and dates:  # refuse before reading any (large) feather file
        _pkl(root / "request_id_dict" / f"{dates[0]}.pkl", trust_pickle)
    fields = info()
    new = remaps is None
    remaps = remaps or {name: _Remap() for name in ("user_id", "device_id", "video_id", "author_id", "cat2")}
    for r in remaps.values():
        r.grow = new
    groups, defaults = GROUPS[n_stages], DEFAULT_INDEX[n_stages]
    pos_key, idx_key = ("rank_pos", "rank_index") if n_stages == 2 else ("rerank_pos", "rerank_index")
    ctx, users, seqs, items, labels, days = [], [], [], [], [], []
    dropped = 0
    for day, date in enumerate(dates):
        import pandas as pd

        df = pd.read_feather(root / "all_stage" / f"{date}.feather")
        missing = {"request_id", "user_id", "request_timestamp", "device_id", "age", "gender", "province",
                   "video_id", pos_key, idx_key} - set(df.columns)
        if missing:
            raise InputError(f"all_stage file lacks columns {sorted(missing)}", root / "all_stage" / f"{date}.feather")
        pos = df[df[pos_key] == 1]
        index_of = dict(zip(zip(pos["request_id"].tolist(), pos["video_id"].tolist()), pos[idx_key].tolist()))
        req = df[["request_id", "user_id", "request_timestamp", "device_id", "age", "gender",
                  "province"]].drop_duplicates("request_id")
        rdict = _pkl(root / "request_id_dict" / f"{date}.pkl", trust_pickle)
        sdict = _pkl(root / "seq_effective_50_dict" / f"{date}.pkl", trust_pickle)
        n_day = 0
        for row in req.itertuples(index=False):
            flows = rdict.get(row.request_id, {})
            if any(len(flows.get(g, ())) < 10 for g in groups) or row.request_id not in sdict:
                dropped += 1
                continue
            blocks, labs = [], []
            for g, d in zip(groups, defaults):
                arr = np.asarray(flows[g])[:10]
                blocks.append(arr)
                if d is None:
                    labs.append([30.0 - index_of.get((row.request_id, int(v)), 500) for v in arr[:, 0]])
                else:
                    labs.append([30.0 - d] * 10)
            flow = np.concatenate(blocks)  # (N, 7)
            it = np.zeros((len(flow), 8), np.int32)
            it[:, 0], it[:, 1], it[:, 2] = remaps["video_id"](flow[:, 0]), remaps["author_id"](flow[:, 1]), \
                remaps["cat2"](flow[:, 3])
            it[:, 3], it[:, 4] = flow[:, 6], flow[:, 4] + 1  # category_level_one keeps its ids (padding_idx = 2)
            it[:, 5:] = _time_fields(flow[:, 5])
            s = np.asarray(sdict[row.request_id])[-seq_len:]
            valid = s[:, 7] > 0
            sq = np.zeros((len(s), 5), np.int32)
            sq[:, 0], sq[:, 1], sq[:, 2] = remaps["video_id"](s[:, 0]), remaps["author_id"](s[:, 1]), \
                remaps["cat2"](s[:, 2])
            sq[:, 3], sq[:, 4] = s[:, 3], s[:, 4] + 1
            sq[~valid] = 0
            if len(sq) < seq_len:
                sq = np.concatenate([np.zeros((seq_len - len(sq), 5), np.int32), sq])
            tf = _time_fields([row.request_timestamp // 1000])[0]
            ctx.append(tf)
            users.append([remaps["user_id"]([row.user_id])[0], remaps["device_id"]([row.device_id])[0],
                          row.gender + 1, row.age + 1, row.province + 1])
            seqs.append(sq)
            items.append(it)
            labels.append(np.concatenate(labs))
            days.append(day)
            n_day += 1
            if max_requests and n_day >= max_requests:
                break
    if not items:
        raise InputError(f"no complete requests in {dates} ({dropped} dropped for missing groups)", root)
    r = len(items)
    item_arr = np.stack(items)  # (R, N, 8)
    vocab = {"ctx": [7, 24, 60], "user": [int(x) for x in np.max(users, 0)],
             "item": [int(x) for x in item_arr.reshape(-1, 8).max(0)]}
    for f, name in ((0, "video_id"), (1, "author_id"), (2, "cat2")):
        vocab["item"][f] = max(vocab["item"][f], len(remaps[name].ids))
    vocab["user"][0], vocab["user"][1] = len(remaps["user_id"].ids), len(remaps["device_id"].ids)
    data = CascadeData(np.asarray(ctx, np.int32), np.arange(r, dtype=np.int32), np.arange(r, dtype=np.int32),
                       np.arange(r * item_arr.shape[1], dtype=np.int32).reshape(r, -1),
                       np.asarray(labels, np.float32), np.full((r, item_arr.shape[1]), np.nan, np.float32),
                       np.asarray(days, np.int32), np.asarray(users, np.int32), np.stack(seqs),
                       item_arr.reshape(-1, 8), {**vocab, "dropped": dropped, "fields": fields})
    data.validate()
    return data, remaps


def write_layout(data: CascadeData, root: str | Path, dates: list[str], n_stages: int) -> Path:
    """Write simulated requests in the RecFlow layout (fixtures for the loader's tests; never real RecFlow rows).

    Day ``d`` of ``data`` goes to ``dates[d]``. Item field 5 (duration bucket) fills the unused column 2.
    """
    import pandas as pd

    root = Path(root)
    for sub in ("all_stage", "request_id_dict", "seq_effective_50_dict", "others"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    groups = GROUPS[n_stages]
    pos_key, idx_key = ("rank_pos", "rank_index") if n_stages == 2 else ("rerank_pos", "rerank_index")
    base = int(_dt.datetime(2024, 1, 1, tzinfo=TZ).timestamp())
    for d, date in enumerate(dates):
        rows, rdict, sdict = [], {}, {}
        for r in np.flatnonzero(data.day == np.unique(data.day)[d]):
            rid = int(r) + 1_000_000
            feats = data.item_feats[data.item[r]] - 1  # (N, 8) raw ids (un-shifted)
            up_ts = base + feats[:, 7] * 86400 + feats[:, 5] * 3600
            flow = np.stack([feats[:, 0], feats[:, 1], feats[:, 5], feats[:, 3], feats[:, 4], up_ts,
                             feats[:, 2] + 3], 1).astype(np.int64)  # (N, 7); cat1 ids shifted past padding 2
            rdict[rid] = {g: flow[10 * i:10 * i + 10] for i, g in enumerate(groups)}
            seq = data.seq_table[data.sid[r]].astype(np.int64)  # (L, 5), shifted, 0 = pad
            s = np.zeros((50, 8), np.int64)
            valid = seq[:, 0] > 0
            raw = seq - 1
            tail = np.stack([raw[:, 0], raw[:, 1], raw[:, 3], raw[:, 2] + 3, raw[:, 4], raw[:, 0] * 0,
                             raw[:, 0] * 0, valid.astype(np.int64) * (base + 1)], 1)
            tail[~valid] = 0
            s[-len(seq):] = tail[-50:]
            sdict[rid] = s
            u = data.user_feats[data.uid[r]] - 1
            ts = (base + d * 86400 + (int(data.ctx[r, 0]) - 1) * 3600) * 1000
            lab = data.labels[r]
            for j in range(data.n_items):
                is_pos = j < 10
                rows.append({"request_id": rid, "user_id": int(u[0]), "request_timestamp": ts,
                             "device_id": int(data.ctx[r, 1]), "age": int(u[1]), "gender": int(u[2]),
                             "province": int(u[3]), "video_id": int(flow[j, 0]),
                             pos_key: int(is_pos), idx_key: int(30 - lab[j]) if is_pos else -1})
        pd.DataFrame(rows).to_feather(root / "all_stage" / f"{date}.feather")
        with open(root / "request_id_dict" / f"{date}.pkl", "wb") as f:
            pickle.dump(rdict, f)
        with open(root / "seq_effective_50_dict" / f"{date}.pkl", "wb") as f:
            pickle.dump(sdict, f)
    cnt = {"video_id": int(data.item_feats[:, 0].max()), "author_id": int(data.item_feats[:, 1].max()),
           " category_level_two": int(data.item_feats[:, 3].max())}  # the upstream key has a leading space
    with open(root / "others" / "id_cnt.pkl", "wb") as f:
        pickle.dump(cnt, f)
    return root
