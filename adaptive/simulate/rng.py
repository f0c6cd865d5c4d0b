"""Per-trial random streams for the simulator: SFC64, seeded by SplitMix64, compiled with numba.

Every virtual trial needs its own stream, so that a trial's result does not depend on how trials
are chunked or on how many workers run them. Building one numpy ``Generator`` per trial (from a
``SeedSequence``) costs about 100 µs a trial, as much as simulating a two-arm trial, so the
streams are generated here in one compiled loop:

* **Seeding**: the three state words of trial ``i``'s block ``b`` are successive outputs of
  SplitMix64 (Steele, Lea & Flood 2014, the seeding generator of Java's ``SplittableRandom`` and
  of xoshiro) started from a hash of ``(seed, i, b)``; the counter word starts at 1 and the first
  12 outputs are discarded, as numpy's ``SFC64`` does after seeding.
* **Generator**: SFC64 (Chris Doty-Humphrey's Small Fast Chaotic generator, one of numpy's bit
  generators), uniforms ``(x >> 11) * 2**-53`` exactly as ``numpy.random.Generator.random``.

``tests/test_simulate.py`` checks the compiled generator bit for bit against numpy's ``SFC64``
set to the same state, and SplitMix64 against its published test vector.
"""

from __future__ import annotations

import numba
import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U11 = np.uint64(11)
_U3 = np.uint64(3)
_U24 = np.uint64(24)
_U40 = np.uint64(40)
_ONE = np.uint64(1)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@numba.njit(cache=True, nogil=True)
def _mix(z):
    """SplitMix64's output function of the state ``z`` (already advanced by the golden gamma)."""
    z = (z ^ (z >> _U30)) * _M1
    z = (z ^ (z >> _U27)) * _M2
    return z ^ (z >> _U31)


@numba.njit(cache=True, nogil=True)
def _sfc_next(s):
    tmp = s[0] + s[1] + s[3]
    s[3] += _ONE
    s[0] = s[1] ^ (s[1] >> _U11)
    s[1] = s[2] + (s[2] << _U3)
    s[2] = ((s[2] << _U24) | (s[2] >> _U40)) + tmp
    return tmp


@numba.njit(cache=True, nogil=True)
def _fill(words, out):
    """Fill ``out[r]`` (any shape, flattened) from SFC64 seeded with the words ``words[r, :3]``."""
    s = np.empty(4, np.uint64)
    n = out.shape[1]
    for r in range(words.shape[0]):
        s[0] = words[r, 0]
        s[1] = words[r, 1]
        s[2] = words[r, 2]
        s[3] = _ONE
        for _ in range(12):
            _sfc_next(s)
        for j in range(n):
            out[r, j] = np.float64(_sfc_next(s) >> _U11) * _TO_UNIT


@numba.njit(cache=True, nogil=True)
def _seed_words(seed, trials, block):
    """SFC64 seed words of each trial's block: SplitMix64 started from a hash of (seed, trial, block)."""
    out = np.empty((trials.shape[0], 3), np.uint64)
    for r in range(trials.shape[0]):
        h = _mix(seed + _GOLDEN)
        h = _mix(h ^ (np.uint64(trials[r]) + _GOLDEN))
        h = _mix(h ^ (block + _GOLDEN))
        for j in range(3):
            h += _GOLDEN
            out[r, j] = _mix(h)
    return out


def seed_words(seed: int, trials: np.ndarray, block: int) -> np.ndarray:
    """The ``(len(trials), 3)`` SFC64 seed words of the trials' block ``block``."""
    return _seed_words(np.uint64(int(seed) & _MASK), np.asarray(trials, np.int64), np.uint64(int(block)))


def uniforms_from_words(words: np.ndarray, n: int) -> np.ndarray:
    """``n`` uniforms on [0, 1) per row of seed words, ``(rows, n)``."""
    out = np.empty((words.shape[0], n))
    _fill(np.ascontiguousarray(words, np.uint64), out)
    return out


def trial_uniforms(seed: int, trials: np.ndarray, block: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniforms of shape ``(len(trials), *shape)``: row ``r`` from trial ``trials[r]``'s own stream."""
    n = int(np.prod(shape))
    return uniforms_from_words(seed_words(seed, trials, block), n).reshape((len(trials), *shape))
