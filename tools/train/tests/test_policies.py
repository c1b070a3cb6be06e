"""Exit policies on hand-made logits (C = 2, L = 4)."""
import math

import numpy as np
import pytest

from beex.policies import calibrate, entropies_np, evaluate_policy, exit_blocks


def logits_for_p(ps):
    """Two-class logits whose softmax puts probability p on class 1."""
    return np.array([[0.0, math.log(p / (1 - p))] for p in ps], dtype=np.float32)


def H2(p):
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


# sample 0: confidence grows then stalls; sample 1: unsure throughout; sample 2: flips class.
LOGITS = np.stack([logits_for_p([0.6, 0.9, 0.92, 0.93]),
                   logits_for_p([0.5, 0.52, 0.51, 0.55]),
                   logits_for_p([0.2, 0.7, 0.8, 0.9])])


def test_entropies_match_closed_form():
    H = entropies_np(LOGITS)
    assert np.allclose(H[0], [H2(p) for p in (0.6, 0.9, 0.92, 0.93)], atol=1e-6)
    # p = 0 terms count 0 (no NaN) for saturated logits
    assert entropies_np(np.array([[[0.0, 200.0]]], dtype=np.float32))[0, 0] == 0.0


def test_entropy_reduction():
    # block 1 has no predecessor: delta_1 = 0, so it exits when H_1/ln2 < kappa.
    # sample 0: H_1/ln2 = 0.97 >= kappa -> no; block 2: delta = (H(.6)-H(.9))/H(.6) = 0.52 -> no;
    # block 3: delta = 0.14 -> no with tau 0.1;
    # block 4: delta = (H(.92)-H(.93))/H(.92) = 0.07 < 0.1 and H/ln2 = 0.366 < 0.5 -> exit 4.
    ex = exit_blocks("entropy_reduction", {"tau": 0.1, "kappa": 0.5}, LOGITS)
    assert ex.tolist() == [4, 4, 4]
    ex = exit_blocks("entropy_reduction", {"tau": 0.2, "kappa": 0.5}, LOGITS)
    assert ex.tolist() == [3, 4, 4]
    # kappa 1: samples 0 and 2 exit at block 1 (H/ln2 = 0.97 and 0.72 < 1); the unsure sample has
    # H_1/ln2 = 1 exactly (not < 1) and leaves at block 2 (delta_2 = 0.001 < 0.2).
    ex = exit_blocks("entropy_reduction", {"tau": 0.2, "kappa": 1.0}, LOGITS)
    assert ex.tolist() == [1, 2, 1]


def test_entropy_reduction_lets_a_sure_sample_leave_at_block_1():
    # With H_0 = ln C (the shared spec) a sure block 1 has delta_1 = 1 - H_1/ln C ~ 1 >= tau and
    # had to run block 2; with delta_1 = 0 it leaves at once, an unsure one does not.
    lg = np.stack([logits_for_p([0.99, 0.99, 0.99]), logits_for_p([0.6, 0.99, 0.99])])
    assert exit_blocks("entropy_reduction", {"tau": 0.1, "kappa": 0.3}, lg).tolist() == [1, 3]


def test_entropy_and_normalized_entropy():
    assert exit_blocks("entropy", {"tau": 0.35}, LOGITS).tolist() == [2, 4, 4]
    # H(0.2) = 0.5004: tau 0.5 does not take it, 0.51 does
    assert exit_blocks("entropy", {"tau": 0.5}, LOGITS).tolist() == [2, 4, 4]
    assert exit_blocks("entropy", {"tau": 0.51}, LOGITS).tolist() == [2, 4, 1]
    tau_n = 0.35 / math.log(2)
    assert exit_blocks("normalized_entropy", {"tau": tau_n}, LOGITS).tolist() == [2, 4, 4]


def test_confidence():
    assert exit_blocks("confidence", {"tau": 0.8}, LOGITS).tolist() == [2, 4, 1]
    assert exit_blocks("confidence", {"tau": 0.95}, LOGITS).tolist() == [4, 4, 4]


def test_patience():
    # argmax per block: s0 1,1,1,1; s1 (p=0.5: tie -> class 0 first) 0,1,1,1; s2 0,1,1,1
    assert exit_blocks("patience", {"t": 1}, LOGITS).tolist() == [2, 3, 3]
    assert exit_blocks("patience", {"t": 2}, LOGITS).tolist() == [3, 4, 4]
    with pytest.raises(ValueError):
        exit_blocks("patience", {"t": 0}, LOGITS)


def test_none_and_unknown():
    assert exit_blocks("none", {}, LOGITS).tolist() == [4, 4, 4]
    with pytest.raises(ValueError):
        exit_blocks("nope", {}, LOGITS)


def test_evaluate_and_calibrate():
    labels = [1, 1, 1]
    acc, blocks, ex = evaluate_policy("confidence", {"tau": 0.8}, LOGITS, labels)
    # sample 2 exits at block 1 with p(class 1) = 0.2 -> wrong
    assert ex.tolist() == [2, 4, 1] and acc == pytest.approx(2 / 3) and blocks == pytest.approx(7 / 3)
    params, acc, blocks = calibrate("confidence", LOGITS, labels, max_drop=0.0)
    full_acc, _, _ = evaluate_policy("none", {}, LOGITS, labels)
    assert acc >= full_acc and blocks < 4
