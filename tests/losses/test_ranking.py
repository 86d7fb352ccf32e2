"""Ranking distillation losses against brute force over permutations and hand-computed examples."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from capcse.losses.ranking import (DistributionAlignmentLoss, ListMLELoss, ListNetLoss, RankingConsistencyLoss,
                                   mix_teacher_similarities)


def plackett_luce_probability(scores: list[float], order: tuple[int, ...]) -> float:
    """P(order | scores) = prod_k exp(s_order[k]) / sum_{l >= k} exp(s_order[l]), by plain Python."""
    prob = 1.0
    for k in range(len(order)):
        rest = sum(math.exp(scores[j]) for j in order[k:])
        prob *= math.exp(scores[order[k]]) / rest
    return prob


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_listmle_equals_brute_force_plackett_luce(n):
    g = torch.Generator().manual_seed(n)
    student = torch.randn(3, n, generator=g, dtype=torch.float64) * 2
    teacher = torch.randn(3, n, generator=g, dtype=torch.float64)
    expected = []
    for row in range(3):
        s = student[row].tolist()
        probs = {perm: plackett_luce_probability(s, perm) for perm in itertools.permutations(range(n))}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)  # a distribution over all n! orders
        teacher_order = tuple(sorted(range(n), key=lambda j: -teacher[row, j].item()))
        expected.append(-math.log(probs[teacher_order]))
    got = ListMLELoss(tie_break="stable")(student, teacher)
    assert got.item() == pytest.approx(float(np.mean(expected)), rel=1e-10)


def test_listmle_minimum_is_the_teacher_order():
    """Among all assignments of the same score values, ListMLE is smallest when the student ranks like the teacher."""
    teacher = torch.tensor([[0.3, 2.0, -1.0, 0.9]], dtype=torch.float64)
    values = torch.tensor([3.0, 1.5, 0.2, -2.0], dtype=torch.float64)
    loss = ListMLELoss(tie_break="stable")
    losses = {}
    for perm in itertools.permutations(range(4)):
        student = values[list(perm)].unsqueeze(0)
        losses[perm] = loss(student, teacher).item()
    best = min(losses, key=losses.get)
    teacher_rank = torch.argsort(torch.argsort(-teacher[0])).tolist()  # rank of each candidate
    assert [values[best[j]].item() for j in range(4)] == [values[teacher_rank[j]].item() for j in range(4)]


def test_listmle_random_tie_break_is_a_permutation_of_ties_only():
    teacher = torch.tensor([[1.0, 1.0, 0.0]])
    student = torch.tensor([[0.5, -0.5, 2.0]])
    loss = ListMLELoss(tie_break="random")
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        seen.add(round(loss(student, teacher).item(), 6))
    s = student[0].tolist()
    both = {round(-math.log(plackett_luce_probability(s, o)), 6) for o in [(0, 1, 2), (1, 0, 2)]}
    assert seen == both


def test_listmle_exclude_diagonal_drops_self():
    student = torch.tensor([[9.0, 1.0, 0.0], [1.0, 9.0, 0.5], [0.2, 0.1, 9.0]], dtype=torch.float64)
    teacher = torch.tensor([[5.0, 2.0, 1.0], [1.0, 5.0, 2.0], [2.0, 1.0, 5.0]], dtype=torch.float64)
    got = ListMLELoss(exclude_diagonal=True, tie_break="stable")(student, teacher).item()
    rows = [([1.0, 0.0], (0, 1)), ([1.0, 0.5], (1, 0)), ([0.2, 0.1], (0, 1))]
    expected = np.mean([-math.log(plackett_luce_probability(s, o)) for s, o in rows])
    assert got == pytest.approx(expected, rel=1e-10)


def test_listnet_top_one_probabilities_equal_brute_force_marginals():
    """ListNet's top-one probability of j is the Plackett-Luce probability that j is ranked first:
    summing P(order) over all orders starting with j must give the softmax used by the loss."""
    g = torch.Generator().manual_seed(0)
    n = 5
    student = torch.randn(n, n, generator=g, dtype=torch.float64)
    teacher = torch.randn(n, n, generator=g, dtype=torch.float64)
    expected = []
    for i in range(n):
        cands = [j for j in range(n) if j != i]  # RankCSE leaves the diagonal out
        s = [student[i, j].item() for j in cands]
        t = [teacher[i, j].item() for j in cands]
        top1 = lambda scores: [sum(plackett_luce_probability(scores, o)  # noqa: E731
                                   for o in itertools.permutations(range(len(cands))) if o[0] == k)
                               for k in range(len(cands))]
        p_s, p_t = top1(s), top1(t)
        expected.append(-sum(pt * math.log(ps) for pt, ps in zip(p_t, p_s)))
    got = ListNetLoss()(student, teacher).item()
    assert got == pytest.approx(float(np.mean(expected)), rel=1e-10)


def test_listnet_hand_computed_and_minimum():
    # one row over candidates (diagonal excluded): student logits [1, 0] on j=1,2; teacher [0, 0] -> uniform target
    student = torch.tensor([[100.0, 1.0, 0.0]], dtype=torch.float64)
    teacher = torch.tensor([[100.0, 0.0, 0.0]], dtype=torch.float64)
    p1 = math.exp(1) / (math.exp(1) + 1)
    expected = -(0.5 * math.log(p1) + 0.5 * math.log(1 - p1))
    assert ListNetLoss()(student, teacher).item() == pytest.approx(expected, rel=1e-12)
    # minimum (= teacher entropy, log 2) when the student distribution equals the teacher's
    assert ListNetLoss()(teacher, teacher).item() == pytest.approx(math.log(2), rel=1e-12)
    g = torch.Generator().manual_seed(1)
    t = torch.randn(6, 6, generator=g, dtype=torch.float64)
    floor = ListNetLoss()(t, t).item()
    for _ in range(20):
        assert ListNetLoss()(t + 0.3 * torch.randn(6, 6, generator=g, dtype=torch.float64), t).item() >= floor


def test_listnet_ignores_the_diagonal():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)
    s2, t2 = s.clone(), t.clone()
    s2.fill_diagonal_(50.0)
    t2.fill_diagonal_(-50.0)
    assert ListNetLoss()(s, t).item() == pytest.approx(ListNetLoss()(s2, t2).item(), rel=1e-6)
    # the inputs are not modified in place (RankCSE's fill_diagonal_ mutates its arguments)
    assert torch.equal(s2.diagonal(), torch.full((4,), 50.0))


def test_mix_teacher_similarities_alpha():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(mix_teacher_similarities(a, b, alpha=0.33), torch.tensor([[0.33, 2.01]]))
    assert mix_teacher_similarities(a, None) is a
    with pytest.raises(ValueError):
        mix_teacher_similarities(a, b, alpha=1.5)


def test_distribution_alignment_hand_computed_and_zero_at_match():
    loss = DistributionAlignmentLoss(student_temperature=1.0, target_temperature=1.0)
    s = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)   # softmax -> [1/4, 3/4]
    t = torch.tensor([[0.0, 0.0]], dtype=torch.float64)               # softmax -> [1/2, 1/2]
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert loss(s, t).item() == pytest.approx(expected, rel=1e-12)
    # temperatures: student/tau_s equal to target/tau_t gives exactly zero (the minimum of a KL)
    loss2 = DistributionAlignmentLoss(student_temperature=0.05, target_temperature=0.5)
    target = torch.randn(5, 5, dtype=torch.float64)
    assert loss2(target * 0.1, target).item() == pytest.approx(0.0, abs=1e-12)
    assert loss2(target * 0.1 + 0.01 * torch.randn(5, 5, dtype=torch.float64), target).item() > 0


def test_ranking_consistency_is_jensen_shannon():
    from scipy.spatial.distance import jensenshannon

    g = torch.Generator().manual_seed(3)
    l1, l2 = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)
    p, q = torch.softmax(l1, -1).numpy(), torch.softmax(l2, -1).numpy()
    expected = np.mean([jensenshannon(p[i], q[i]) ** 2 for i in range(4)])  # scipy gives sqrt(JS), natural log
    assert RankingConsistencyLoss()(l1, l2).item() == pytest.approx(expected, rel=1e-9)
    assert RankingConsistencyLoss()(l1, l1).item() == pytest.approx(0.0, abs=1e-12)


def test_rankcse_divergence_as_released_ignores_agreement():
    """RankCSE's Divergence clamps log(M) at min=1e-7: M becomes a constant and the value depends only on
    each distribution's own entropy -- identical for q = p and for q a reordering of p. (Our loss differs.)"""
    def released(p, q):  # the released formula, restated: KLDivLoss(log_target=True, batchmean)
        m = (0.5 * (p + q)).log().clamp(min=1e-7)
        kl = lambda inp, tgt: (tgt.exp() * (tgt - inp)).sum() / inp.size(0)  # noqa: E731
        return 0.5 * (kl(m, p.log()) + kl(m, q.log()))

    p = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.2, 0.7]], dtype=torch.float64)
    assert released(p, p).item() == pytest.approx(released(p, q).item(), abs=1e-12)
    assert RankingConsistencyLoss()(p.log(), q.log()).item() > 0.1


def test_listmle_reference_form_floors_the_tail_sums_at_1e_7():
    """RankCSE/DALR's released ListMLE: log(cumsum(exp(s - max)) + 1e-7). Hand-computed on a 2-list."""
    teacher = torch.tensor([[1.0, 0.0]], dtype=torch.float64)       # order: candidate 0, then 1
    reference, exact = ListMLELoss(tie_break="stable", form="reference"), ListMLELoss(tie_break="stable")
    for gap in (0.5, 3.0, 20.0):
        student = torch.tensor([[0.0, -gap]], dtype=torch.float64)
        # exact: -log P_PL = log(1 + e^-gap) (the last term, log e^s - s, is 0)
        assert exact(student, teacher).item() == pytest.approx(math.log1p(math.exp(-gap)), rel=1e-12)
        # reference: log(1 + e^-gap + 1e-7) + log(e^-gap + 1e-7) + gap
        expected = math.log(1 + math.exp(-gap) + 1e-7) + math.log(math.exp(-gap) + 1e-7) + gap
        assert reference(student, teacher).item() == pytest.approx(expected, rel=1e-12)
    # a spread of 0.5 or 3 nats: the forms agree to ~1e-6; at 20 nats the floor adds ~3.9 nats
    small = torch.tensor([[0.0, -3.0]], dtype=torch.float64)
    assert abs(reference(small, teacher).item() - exact(small, teacher).item()) < 3e-6
    big = torch.tensor([[0.0, -20.0]], dtype=torch.float64)
    assert reference(big, teacher).item() - exact(big, teacher).item() == pytest.approx(3.90, abs=0.01)
    with pytest.raises(ValueError, match="form"):
        ListMLELoss(form="approx")
