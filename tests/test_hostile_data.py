"""Hostile and broken feature files: the loader and its cache (issue 12).

The crafted pickles are assembled here from raw opcodes (no binary fixtures).
The dangerous ones -- those that crashed the interpreter or allocated
gigabytes before the fix -- are loaded in a child process that forks once
per case under an address-space limit, so a segmentation fault or a runaway
allocation shows up as a failed test instead of killing the test run.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import subprocess
import sys
import warnings
from collections import OrderedDict

import numpy as np
import pytest

from simsbench.datasets import (
    MMSAFormatError,
    UnsafePickleError,
    load_dataset,
    load_mmsa,
    make_synthetic_mmsa,
    parse_data_spec,
    write_mmsa,
)

# -- a tiny pickle assembler ---------------------------------------------------


class Raw(bytes):
    """Opcodes spliced into a pickle as they are; they push one value."""


def op_str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def op_bytes(b: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(b)) + b


def op_int(n: int) -> bytes:
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def op_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def op_call(func: bytes, *args: bytes) -> bytes:
    return func + op_tuple(*args) + b"R"


def op_dtype(code: str, order: str = "<", build: bool = True) -> bytes:
    made = op_call(op_global("numpy", "dtype"), op_str(code), b"\x89", b"\x88")
    if not build:
        return made
    state = op_tuple(op_int(3), op_str(order), b"N", b"N", b"N", op_int(-1), op_int(-1),
                     op_int(63 if code.startswith("O") else 0))
    return made + state + b"b"


def op_reconstruct(shape: tuple, dtype: bytes, raw: bytes) -> bytes:
    """numpy's own array pickle: ``_reconstruct`` then ``BUILD`` with state."""
    made = op_call(op_global("numpy.core.multiarray", "_reconstruct"),
                   op_global("numpy", "ndarray"), op_tuple(op_int(0)), op_bytes(b"b"))
    state = op_tuple(op_int(1), op_tuple(*map(op_int, shape)), dtype, b"\x89", raw)
    return made + state + b"b"


def encode(value) -> bytes:
    """Protocol-3 opcodes for dicts, lists, strings, numbers and arrays."""
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, dict):
        return b"}" + b"".join(encode(k) + encode(v) + b"s" for k, v in value.items())
    if isinstance(value, list):
        return b"]" + b"".join(encode(v) + b"a" for v in value)
    if isinstance(value, str):
        return op_str(value)
    if isinstance(value, bool):
        return b"\x88" if value else b"\x89"
    if isinstance(value, int):
        return op_int(value)
    if isinstance(value, float):
        return b"G" + struct.pack(">d", value)
    if isinstance(value, np.ndarray):  # numpy's own pickle, without PROTO and STOP
        return pickle.dumps(value, protocol=3)[2:-1]
    raise TypeError(type(value))


def pickle_bytes(value) -> bytes:
    return b"\x80\x03" + encode(value) + b"."


def _base():
    sup, _ = make_synthetic_mmsa(n_samples=(6, 3, 3), seq_lens=(4, 5, 3),
                                 feature_dims=(8, 3, 5), random_state=0)
    return {s: dict(sup[s]) for s in ("train", "valid", "test")}


def _set(split: str, key: str, value):
    def mutate(d):
        d[split][key] = value
    return mutate


def _all_splits(key: str, fn):
    def mutate(d):
        for s in ("train", "valid", "test"):
            d[s][key] = fn(d[s][key])
    return mutate


def _shared_reference_bomb(n: int = 2000) -> Raw:
    """[[[0.5] * n] * n] * n built from ONE inner list (memo references):
    26 kB on disk, n**3 float64 = 64 GB as an array."""
    inner = b"]" + b"(" + (b"G" + struct.pack(">d", 0.5)) * n + b"e" + b"r" + struct.pack(
        "<I", 90001)
    middle = b"]" + b"(" + (b"j" + struct.pack("<I", 90001)) * n + b"e" + b"r" + struct.pack(
        "<I", 90002)
    outer = b"]" + b"(" + (b"j" + struct.pack("<I", 90002)) * n + b"e"
    return Raw(inner + b"0" + middle + b"0" + outer)


def _padding_bomb(n: int = 50_000) -> Raw:
    """n references to one n-character string: a (n,) <U{n} array is 4 n**2 bytes."""
    return Raw(op_str("x" * n) + b"r" + struct.pack("<I", 90003) + b"0" + b"]" + b"("
               + (b"j" + struct.pack("<I", 90003)) * n + b"e")


DEEP = 200_000  # the 10**6 takes 7 s in the pure-Python unpickler; same paths

# name -> (mutation of the base dict, error class, regex the message must match)
CORPUS = {
    # object arrays whose element pointers are bytes the file chose
    "object_array_buffer": (_set("train", "id", Raw(op_call(
        op_global("numpy", "ndarray"), op_tuple(op_int(2)), op_dtype("O8", "|", build=False),
        op_call(op_global("builtins", "bytearray"), op_bytes(b"A" * 16))))),
        UnsafePickleError, r"train/id: .*numpy\.ndarray directly"),
    "object_array_state": (_set("train", "id", Raw(op_reconstruct(
        (2,), op_dtype("O8", "|"), op_bytes(b"A" * 16)))),
        UnsafePickleError, r"train/id: an object array whose contents are raw bytes"),
    # buffer views that multiply a few bytes into gigabytes
    "zero_stride_view": (_set("train", "text", Raw(op_call(
        op_global("numpy", "ndarray"), op_tuple(op_int(10), op_int(5_000_000), op_int(8)),
        op_dtype("f4"), op_call(op_global("builtins", "bytearray"), op_bytes(b"\0" * 4)),
        op_int(0), op_tuple(op_int(0), op_int(0), op_int(0))))),
        UnsafePickleError, r"train/text: .*numpy\.ndarray directly"),
    "negative_stride_view": (_set("train", "audio", Raw(op_call(
        op_global("numpy", "ndarray"), op_tuple(op_int(4)), op_dtype("f4"),
        op_call(op_global("builtins", "bytearray"), op_bytes(b"\0" * 16)),
        op_int(12), op_tuple(op_int(-4))))),
        UnsafePickleError, r"train/audio: .*numpy\.ndarray directly"),
    # declared sizes the file does not hold
    "bytearray_10e10": (_set("train", "audio", Raw(op_call(
        op_global("builtins", "bytearray"), op_int(10**10)))),
        MMSAFormatError, r"train/audio: bytearray\(10,000,000,000\) declares more bytes"),
    "binbytes8_2e40": (_set("train", "audio", Raw(b"\x8e" + struct.pack("<Q", 2**40) + b"x")),
                       MMSAFormatError,
                       r"train/audio: BINBYTES8 declares 1,099,511,627,776 bytes .* has only"),
    "frame_2e40": (_set("train", "text", Raw(b"\x95" + struct.pack("<Q", 2**40)
                                             + encode(np.zeros((6, 4, 8), np.float32)))),
                   MMSAFormatError, r"train/text: FRAME declares 1,099,511,627,776 bytes"),
    "binunicode8_2e40": (_set("valid", "id", Raw(b"\x8d" + struct.pack("<Q", 2**40) + b"x")),
                         MMSAFormatError, r"valid/id: the stream declares 1,099,511,627,776"),
    "ndarray_huge_shape_call": (_set("train", "vision", Raw(op_call(
        op_global("numpy", "ndarray"), op_tuple(op_int(10**6), op_int(10**6)),
        op_str("f8")))), UnsafePickleError, r"train/vision: .*numpy\.ndarray directly"),
    "reconstruct_huge_shape": (_set("train", "vision", Raw(op_reconstruct(
        (10**6, 10**6), op_dtype("f8"), op_bytes(b"\0" * 8)))),
        MMSAFormatError, r"train/vision: an array of shape \(1000000, 1000000\) .* needs "
                         r"7\.3 TiB of data but the file gives 8 bytes"),
    # nesting and shared references
    "deep_nesting_id": (_set("train", "id", Raw(b"]" * DEEP + b"a" * (DEEP - 1))),
                        MMSAFormatError, r"train/id: nested more than 32 levels deep"),
    "shared_reference_bomb": (_set("train", "audio", _shared_reference_bomb()),
                              MMSAFormatError, r"train/audio: a \(2000, 2000, 2000\) float64 "
                                               r"array would take 59\.6 GiB"),
    "string_padding_bomb": (_set("test", "raw_text", _padding_bomb()),
                            MMSAFormatError, r"test/raw_text: 50000 strings of up to 50000 "
                                             r"characters would take 9\.3 GiB"),
    # arrays a run cannot use
    "ragged_train_audio": (_set("train", "audio", [[[0.5] * 3] * 4, [[0.5] * 3] * 5] * 3),
                           MMSAFormatError,
                           r"train/audio: is ragged: item 1 has shape \(5, 3\) but item 0 "
                           r"has \(4, 3\)"),
    "test_text_narrower": (lambda d: d["test"].update(text=d["test"]["text"][:, :, :4]),
                           MMSAFormatError, r"test/text: feature width D = 4 differs from "
                                            r"train's 8"),
    "valid_split_empty": (lambda d: d.update(valid={k: v[:0] for k, v in d["valid"].items()}),
                          MMSAFormatError, r"valid/(text|text_bert): has no samples"),
    "train_n_zero": (lambda d: d.update(train={k: v[:0] for k, v in d["train"].items()}),
                     MMSAFormatError, r"train/(text|text_bert): has no samples"),
    "audio_L_zero": (_all_splits("audio", lambda a: a[:, :0]), MMSAFormatError,
                     r"train/audio: has sequence length L = 0"),
    "vision_D_zero": (_all_splits("vision", lambda a: a[:, :, :0]), MMSAFormatError,
                      r"train/vision: has feature width D = 0"),
    "complex_features": (_all_splits("vision", lambda a: a.astype(np.complex64)),
                         MMSAFormatError, r"train/vision: holds complex numbers"),
    "str_features": (_all_splits("audio", lambda a: a.astype(str)), MMSAFormatError,
                     r"train/audio: holds text \(<U\d+\), not feature numbers"),
    "refused_global": (_set("valid", "vision", Raw(op_call(
        op_global("os", "system"), op_str("true")))),
        UnsafePickleError, r"valid/vision: refused to load: the pickle references os\.system"),
    "class_instance": (_set("test", "audio", Raw(
        op_global("collections", "OrderedDict") + op_tuple() + b"\x81")),
        UnsafePickleError, r"test/audio: the pickle creates a class instance"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every crafted file of :data:`CORPUS`, written by this fixture."""
    folder = tmp_path_factory.mktemp("corpus")
    paths = {}
    for name, (mutate, _, _) in CORPUS.items():
        data = _base()
        mutate(data)
        paths[name] = folder / f"{name}.pkl"
        paths[name].write_bytes(pickle_bytes(data))
    return paths


CHILD = r"""
import json, os, sys, warnings
from simsbench.datasets import load_mmsa

def vm_size():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return None

for name, path in json.loads(sys.argv[1]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            import resource
            size = vm_size()
            if size is not None:  # the load may grow the process by 512 MiB at most
                limit = size + (512 << 20)
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            warnings.simplefilter("ignore")
            load_mmsa(path, cache=False)
            out = {"loaded": True}
        except BaseException as exc:
            out = {"error": type(exc).__name__, "message": str(exc),
                   "mro": [c.__name__ for c in type(exc).__mro__]}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks) or b"{}")
    if os.WIFSIGNALED(status):
        result["signal"] = os.WTERMSIG(status)
    print(json.dumps([name, result]), flush=True)
"""


@pytest.fixture(scope="module")
def corpus_results(corpus):
    """Load every crafted file in a forked child under a 512 MiB address-space
    limit; ``{name: result}``."""
    if not hasattr(os, "fork") or not os.path.exists("/proc/self/status"):
        pytest.skip("the crash-proof corpus runner needs fork and /proc (Linux)")
    cases = json.dumps([[name, str(p)] for name, p in corpus.items()])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", CHILD, cases], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(line) for line in proc.stdout.splitlines())


def _check(corpus, corpus_results, name):
    _, cls, pattern = CORPUS[name]
    result = corpus_results[name]
    path = str(corpus[name])
    assert "signal" not in result, f"{name}: the loader died with signal {result['signal']}"
    assert not result.get("loaded"), f"{name}: the file was accepted"
    assert cls.__name__ in result["mro"], f"{name}: {result['error']}: {result['message']}"
    msg = result["message"]
    assert "\n" not in msg and msg.startswith(f"{path}: "), msg
    assert re.search(pattern, msg), msg


# -- Loading: the unpickler ---------------------------------------------------------


def test_object_arrays_from_raw_bytes_never_reach_memory(corpus, corpus_results):
    """Was: an object array over file bytes; touching it -> SIGSEGV (exit 139)."""
    for name in ("object_array_buffer", "object_array_state"):
        _check(corpus, corpus_results, name)


def test_buffer_views_with_zero_or_negative_strides_are_refused(corpus, corpus_results):
    """Was: 1 kB -> a (10, 5e6, 8) train text (1.5 GB in the cache)."""
    for name in ("zero_stride_view", "negative_stride_view"):
        _check(corpus, corpus_results, name)


def test_declared_sizes_are_checked_before_allocating(corpus, corpus_results):
    """Was: MemoryError tracebacks for bytearray(10**10), BINBYTES8, FRAME,
    huge shapes."""
    for name in ("bytearray_10e10", "binbytes8_2e40", "frame_2e40", "binunicode8_2e40",
                 "ndarray_huge_shape_call", "reconstruct_huge_shape"):
        _check(corpus, corpus_results, name)


def test_deep_nesting_is_bounded_and_named(corpus, corpus_results):
    """Was: a 10**6-deep list in ``id`` failed without file/split/key."""
    _check(corpus, corpus_results, "deep_nesting_id")


def test_shared_references_cannot_blow_up_a_small_file(corpus, corpus_results):
    for name in ("shared_reference_bomb", "string_padding_bomb"):
        assert corpus[name].stat().st_size < 1 << 20
        _check(corpus, corpus_results, name)


def test_refused_globals_and_instances_are_named(corpus, corpus_results):
    for name in ("refused_global", "class_instance"):
        _check(corpus, corpus_results, name)


def test_crafted_corpus_never_kills_the_interpreter(corpus, corpus_results):
    """Every crafted file is refused with a one-line ``path: split/key: ...``
    under a 512 MiB address-space limit, and none kills the process."""
    assert set(corpus_results) == set(CORPUS)
    for name in CORPUS:
        _check(corpus, corpus_results, name)


def test_protocol2_complex_and_frozenset_load(tmp_path):
    """Was: refused, the allow-list lacked the ``__builtin__`` spellings."""
    data = _base()
    data["train"]["extra"] = [complex(1, 2), frozenset({"a", "b"}), {3, 4},
                              OrderedDict(x=1), bytearray(b"xy"), b"", np.float32(1.5)]
    path = tmp_path / "p2.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_mmsa(path, cache=False)
    np.testing.assert_allclose(ds.y("train", "M"), data["train"]["regression_labels"])
    np.testing.assert_array_equal(ds["train"].ids, data["train"]["id"])


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_every_protocol_round_trips(tmp_path, protocol):
    data = _base()
    data["train"]["id"] = data["train"]["id"].astype(object)  # numpy's list form
    data["train"]["audio"] = np.asfortranarray(data["train"]["audio"])
    path = tmp_path / f"p{protocol}.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_mmsa(path, cache=False)
    expected = np.nan_to_num(data["train"]["audio"], neginf=0, posinf=0)
    np.testing.assert_array_equal(ds["train"].audio, expected.astype(np.float32))
    assert ds["train"].ids.tolist() == data["train"]["id"].tolist()
    assert ds["train"].audio.flags.writeable


# -- Loading: validation of what a run relies on ---------------------------------------


def test_ragged_feature_list_names_file_split_key(corpus, corpus_results):
    """Was: "setting an array element with a sequence", no file/split/key."""
    _check(corpus, corpus_results, "ragged_train_audio")
    with pytest.raises(MMSAFormatError, match=r"train/audio: is ragged"):
        load_mmsa(corpus["ragged_train_audio"], cache=False)


def test_feature_widths_must_match_across_splits(corpus, corpus_results):
    """Was: test text of width 4 beside train text of width 8 loaded."""
    _check(corpus, corpus_results, "test_text_narrower")


def test_empty_splits_and_axes_are_refused(corpus, corpus_results):
    """Was: an empty split, train n = 0, L = 0 or D = 0 loaded."""
    for name in ("valid_split_empty", "train_n_zero", "audio_L_zero", "vision_D_zero"):
        _check(corpus, corpus_results, name)


def test_non_numeric_features_are_refused_or_cast_with_a_note(corpus, corpus_results, tmp_path):
    """Was: object/complex/bool/str features cast silently."""
    for name in ("complex_features", "str_features"):
        _check(corpus, corpus_results, name)
    data = _base()
    data["train"]["vision"] = data["train"]["vision"] > 0
    data["valid"]["audio"] = data["valid"]["audio"].astype(object)  # list-form object array
    path = tmp_path / "cast.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    with pytest.warns(UserWarning) as record:
        ds = load_mmsa(path, cache=False)
    text = " ".join(str(w.message) for w in record)
    assert "train/vision: bool features cast to float32" in text
    assert "valid/audio: stored as nested lists or an object array" in text
    assert ds["train"].vision.dtype == np.float32 and ds["valid"].audio.dtype == np.float32


def test_non_numeric_lengths_and_labels_are_refused(tmp_path):
    data = _base()
    data["train"]["audio_lengths"] = data["train"]["audio_lengths"].astype(str)
    path = write_mmsa(data, tmp_path / "len.pkl")
    with pytest.raises(MMSAFormatError, match=r"len\.pkl: train/audio_lengths: holds text"):
        load_mmsa(path, cache=False)
    data = _base()
    data["valid"]["regression_labels"] = data["valid"]["regression_labels"].astype(complex)
    path = write_mmsa(data, tmp_path / "lab.pkl")
    with pytest.raises(MMSAFormatError, match=r"valid/regression_labels: holds complex"):
        load_mmsa(path, cache=False)


def _v2_files(tmp_path, folder="v2"):
    d = tmp_path / folder
    d.mkdir()
    sup, unl = make_synthetic_mmsa("simsv2", n_samples=(12, 4, 4), seq_lens=(4, 6, 5),
                                   feature_dims=(8, 3, 5), n_unlabelled=5, random_state=0)
    return d, sup, unl


def test_error_in_unlabelled_file_names_that_file(tmp_path):
    """Was: an error in U of ``S.pkl+U.pkl`` was reported against S."""
    d, sup, unl = _v2_files(tmp_path)
    unl["vision"] = unl["vision"][:, :, :2]
    s = write_mmsa(sup, d / "ch-simsv2s.pkl")
    u = write_mmsa(unl, d / "ch-simsv2u.pkl")
    with pytest.raises(MMSAFormatError) as info:
        load_mmsa(s, unlabelled=u, cache=False)
    assert str(info.value).startswith(f"{u}: unlabelled/vision: feature width D = 2")


def test_path_with_plus_can_be_named(tmp_path, monkeypatch):
    """Was: a path containing '+' was split into two paths."""
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    d, sup, unl = _v2_files(tmp_path, "with+plus")
    s = write_mmsa(sup, d / "v2+s.pkl")
    u = write_mmsa(unl, d / "v2+u.pkl")
    assert parse_data_spec(str(s)) == ("file", {"path": str(s), "unlabelled": None})
    assert parse_data_spec(f"{s}+{u}") == ("file", {"path": str(s), "unlabelled": str(u)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset(f"{s}+{u}")
        assert ds["unlabelled"].n_samples == 5
        assert load_dataset(str(s)).has_unlabelled is False
    # nothing exists: the first '+' splits, as before
    assert parse_data_spec("/x/a.pkl+/x/u.pkl") == (
        "file", {"path": "/x/a.pkl", "unlabelled": "/x/u.pkl"})


# -- The .npy cache ----------------------------------------------------------------------


def _load(path, cache, **kw):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_mmsa(path, cache_dir=cache, **kw)
    return ds, [str(w.message) for w in record]


def _cached(cache, name):
    found = sorted(cache.rglob(name))
    assert len(found) == 1, found
    return found[0]


def test_cache_garbage_features_are_not_served(mmsa_pickle, tmp_path):
    """Was: same-size garbage in a cached feature file served inf values."""
    path, _ = mmsa_pickle
    cache = tmp_path / "cache"
    first, _ = _load(path, cache)
    expected = np.array(first["train"].audio)
    f = _cached(cache, "train.audio.npy")
    data = f.read_bytes()
    inf = struct.pack("<f", np.inf) * 8
    f.write_bytes(data[: -len(inf)] + inf)  # same size
    again, messages = _load(path, cache)
    assert np.isfinite(again["train"].audio).all()
    np.testing.assert_array_equal(again["train"].audio, expected)
    assert any("damaged" in m and "rebuilding" in m for m in messages)


def test_cache_out_of_range_labels_are_not_served(mmsa_pickle, tmp_path):
    """Was: a cached label file set to 5.0 was served."""
    path, raw = mmsa_pickle
    cache = tmp_path / "cache"
    _load(path, cache)
    f = _cached(cache, "train.label_M.npy")
    np.save(f, np.full_like(np.load(f), 5.0))
    again, _ = _load(path, cache)
    np.testing.assert_allclose(again.y("train", "M"), raw["train"]["regression_labels"])


def test_cache_wrong_shape_is_not_served(mmsa_pickle, tmp_path):
    path, _ = mmsa_pickle
    cache = tmp_path / "cache"
    first, _ = _load(path, cache)
    shape = first["train"].vision.shape
    f = _cached(cache, "train.vision.npy")
    np.save(f, np.zeros((shape[0], shape[1], shape[2] - 1), np.float32))
    again, _ = _load(path, cache)
    assert again["train"].vision.shape == shape


def test_cache_follows_content_not_size_and_mtime(mmsa_pickle, tmp_path):
    """Was: a pickle rewritten with the same size and mtime (labels negated)
    served the old labels and the old SHA-256."""
    path, raw = mmsa_pickle
    cache = tmp_path / "cache"
    first, _ = _load(path, cache)
    st = path.stat()
    negated = {s: dict(raw[s]) for s in ("train", "valid", "test")}
    for s in negated:
        negated[s]["regression_labels"] = -raw[s]["regression_labels"]
    write_mmsa(negated, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    again, _ = _load(path, cache)
    np.testing.assert_allclose(again.y("train", "M"), -raw["train"]["regression_labels"])
    assert again.description != first.description
    assert again.fingerprint != first.fingerprint


def test_cache_deleted_file_is_rebuilt(mmsa_pickle, tmp_path):
    """Was: AttributeError: 'NoneType' object has no attribute 'shape'."""
    path, raw = mmsa_pickle
    cache = tmp_path / "cache"
    _load(path, cache)
    _cached(cache, "test.audio_lengths.npy").unlink()
    again, messages = _load(path, cache)
    assert again["test"].audio_lengths.shape == (12,)
    assert any("test.audio_lengths.npy is missing" in m for m in messages)


def test_cache_truncated_file_is_repaired(mmsa_pickle, tmp_path):
    """Was: detected, but never repaired: every later load re-parsed."""
    path, _ = mmsa_pickle
    cache = tmp_path / "cache"
    _load(path, cache)
    f = _cached(cache, "valid.text.npy")
    f.write_bytes(f.read_bytes()[:100])
    _, messages = _load(path, cache)
    assert any("damaged" in m for m in messages)
    third, messages = _load(path, cache)
    assert messages == []  # served from the repaired cache: no re-parse, no warning
    assert isinstance(third["valid"].text, np.memmap)
    _cached(cache, "valid.text.npy")  # the replaced entry's files are gone


def test_digest_index_rehashes_only_when_the_file_changed(tmp_path, monkeypatch):
    from simsbench.datasets import _cache

    monkeypatch.setattr(_cache, "RACY_SECONDS", -1.0)
    calls = []
    real = _cache.sha256_file
    monkeypatch.setattr(_cache, "sha256_file", lambda p: calls.append(p) or real(p))
    f = tmp_path / "data.bin"
    f.write_bytes(b"a" * 100)
    index = _cache.DigestIndex(tmp_path / "digests")
    first, _ = index.digest(f)
    assert index.digest(f)[0] == first and len(calls) == 1  # remembered
    st = f.stat()
    f.write_bytes(b"b" * 100)  # same size ...
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the same mtime
    assert index.digest(f)[0] != first and len(calls) == 2  # the ctime moved


def test_cache_entry_is_keyed_by_kind(mmsa_pickle, tmp_path):
    path, _ = mmsa_pickle
    cache = tmp_path / "cache"
    assert _load(path, cache, kind="sims")[0].kind == "sims"
    assert _load(path, cache, kind="simsv2")[0].kind == "simsv2"


def test_truncated_and_corrupted_files_give_one_line_errors(tmp_path):
    """Seeded truncations and byte flips of every protocol: each file either
    loads or is refused with one line naming it, never another exception."""
    rng = np.random.default_rng(0)
    data = _base()
    path = tmp_path / "fuzz.pkl"
    for blob in [pickle.dumps(data, protocol=p) for p in (0, 2, 4, 5)]:
        cases = [blob[:i] for i in rng.choice(len(blob), 25, replace=False)]
        for _ in range(40):
            b = bytearray(blob)
            for i in rng.integers(len(b), size=rng.integers(1, 4)):
                b[int(i)] = int(rng.integers(256))
            cases.append(bytes(b))
        for case in cases:
            path.write_bytes(case)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    load_mmsa(path, cache=False)
            except MMSAFormatError as exc:
                assert "\n" not in str(exc) and str(exc).startswith(f"{path}: "), str(exc)


def test_ids_and_transcripts_of_any_scalars_become_text(tmp_path):
    data = _base()
    data["train"]["raw_text"] = ["a", None, 3, b"\xe4\xbd\xa0", 1.5, "x"]
    data["valid"]["id"] = np.array([7, 8, 9])
    path = write_mmsa(data, tmp_path / "ids.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_mmsa(path, cache=False)
    assert ds["train"].raw_text.tolist() == ["a", "None", "3", "\u4f60", "1.5", "x"]
    assert ds["valid"].ids.tolist() == ["7", "8", "9"]
    data["train"]["raw_text"] = ["a", ["nested"]] * 3
    path = write_mmsa(data, tmp_path / "ids2.pkl")
    with pytest.raises(MMSAFormatError, match=r"ids2\.pkl: train/raw_text: is ragged"):
        load_mmsa(path, cache=False)


def test_first_format_cache_entries_are_removed(mmsa_pickle, tmp_path):
    path, _ = mmsa_pickle
    legacy = tmp_path / "cache" / "mmsa" / ("ab" * 16)
    legacy.mkdir(parents=True)
    (legacy / "meta.json").write_text("{}")
    (legacy / "train.text.npy").write_bytes(b"x")
    _load(path, tmp_path / "cache")
    assert not legacy.exists()


def test_cache_copied_elsewhere_is_verified_not_rebuilt(mmsa_pickle, tmp_path, monkeypatch):
    """New inodes (a copied or restored cache) are checked against the
    recorded digests, then remembered; only changed bytes force a rebuild."""
    import shutil

    from simsbench.datasets import _cache

    path, _ = mmsa_pickle
    _load(path, tmp_path / "cache")
    shutil.copytree(tmp_path / "cache", tmp_path / "copy")
    hashed = []
    real = _cache.sha256_file
    monkeypatch.setattr(_cache, "sha256_file", lambda p: hashed.append(p) or real(p))
    ds, messages = _load(path, tmp_path / "copy")
    assert messages == [] and isinstance(ds["train"].audio, np.memmap)
    n_files = len(list((tmp_path / "copy").rglob("*.npy")))
    assert len([p for p in hashed if str(p).endswith(".npy")]) == n_files
    hashed.clear()
    _load(path, tmp_path / "copy")
    assert not [p for p in hashed if str(p).endswith(".npy")]  # signatures refreshed
