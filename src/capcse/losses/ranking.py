"""Listwise ranking distillation and intra-modal distribution alignment over in-batch similarity lists.

RankCSE (Liu et al., "RankCSE: Unsupervised Sentence Representations Learning via Learning to Rank",
ACL 2023, §3) treats row ``i`` of a similarity matrix as a ranking list: how much sentence ``i``
resembles every candidate ``j`` in the batch. A frozen teacher supplies the target ranking and the
student's scores ``s_ij = cos(h_i, h_j^+) / tau`` are trained to reproduce it. DALR (He et al.,
"DALR: Dual-level Alignment Learning for Multimodal Sentence Representation Learning", ACL Findings
2025, §3.3 intra-modal alignment) reuses these losses with teachers mixed by ``alpha`` and adds a
global alignment term (KL between the student's and the teacher's similarity distributions).

Every loss here takes *logits* (similarities already divided by their temperature), shape [N, M],
student first, teacher second, and averages over the N rows.

* :class:`ListNetLoss` — RankCSE §3.3, ListNet (Cao et al., 2007) top-one form:
  ``L = -1/N sum_i sum_{j != i} P_T(j | i) log P_S(j | i)``, ``P(. | i) = softmax`` of row i with the
  diagonal (the positive itself) left out, as RankCSE's implementation does.
* :class:`ListMLELoss` — RankCSE §3.3, ListMLE (Xia et al., 2008): the negative log Plackett–Luce
  probability of the teacher's ordering ``pi_i`` (row i sorted by teacher score, descending) under
  the student's scores: ``L = -1/N sum_i sum_{k=1..M} [ s_{i,pi_i(k)} - log sum_{l>=k} exp s_{i,pi_i(l)} ]``.
  ``form='reference'`` computes the tail sums as RankCSE's and DALR's released ``ListMLE`` does,
  ``log(cumsum(exp(s - max_i)) + 1e-7)``; ``form='exact'`` with an exact reversed log-cumsum-exp. They
  agree while the tail sums stay well above 1e-7, i.e. while a row's logits span less than ~16 nats
  (``-log 1e-7``); below that the 1e-7 floor caps each tail term (see docs/multimodal.md).
* :func:`mix_teacher_similarities` — RankCSE §3.3 / DALR: ``S_T = alpha S_T1 + (1 - alpha) S_T2``.
* :class:`DistributionAlignmentLoss` — DALR's global (intra-modal) alignment and soft-label
  alignment: ``KL( softmax(T / tau_t) || softmax(S / tau_s) )`` per row, averaged over rows.
* :class:`RankingConsistencyLoss` — RankCSE §3.2: Jensen–Shannon divergence between the rows of
  ``softmax(s(z1, z2))`` and ``softmax(s(z2, z1))``. Written as the divergence it is meant to be;
  RankCSE's released ``Divergence`` clamps the *log* of the mixture at ``min=1e-7``, which turns the
  mixture into the constant 1e-7 (every log-probability is <= 0), so the term no longer measures
  agreement between the two views (see docs/multimodal.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from capcse.losses.simcse import fp32


def _diagonal_mask(n: int, m: int, device) -> torch.Tensor:
    """[n, m] bool, True at (i, i) for i < min(n, m)."""
    rows = torch.arange(n, device=device)[:, None]
    cols = torch.arange(m, device=device)[None, :]
    return rows == cols


def mix_teacher_similarities(first: torch.Tensor, second: torch.Tensor | None = None,
                             alpha: float = 0.33) -> torch.Tensor:
    """``alpha * first + (1 - alpha) * second`` (RankCSE §3.3 / DALR: two teachers, weight alpha for
    the first); with one teacher, ``first`` unchanged."""
    if second is None:
        return first
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if first.shape != second.shape:
        raise ValueError(f"teacher similarity shapes differ: {tuple(first.shape)} vs {tuple(second.shape)}")
    return alpha * first + (1.0 - alpha) * second


class ListNetLoss(nn.Module):
    """ListNet top-one cross entropy between teacher and student ranking distributions (RankCSE §3.3).

    ``forward(student_logits [N,M], teacher_logits [N,M])``. With ``exclude_diagonal`` (RankCSE's
    choice) entry (i, i) — each sentence's own positive — is left out of both distributions, so only
    the ranking among the other candidates is distilled.
    """

    def __init__(self, exclude_diagonal: bool = True):
        super().__init__()
        self.exclude_diagonal = exclude_diagonal

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        s, t = fp32(student_logits), fp32(teacher_logits).detach()
        if s.shape != t.shape:
            raise ValueError(f"student {tuple(s.shape)} and teacher {tuple(t.shape)} differ")
        if self.exclude_diagonal:
            diag = _diagonal_mask(*s.shape, device=s.device)
            s = s.masked_fill(diag, float("-inf"))
            t = t.masked_fill(diag, float("-inf"))
            log_p = F.log_softmax(s, dim=-1).masked_fill(diag, 0.0)
        else:
            log_p = F.log_softmax(s, dim=-1)
        q = F.softmax(t, dim=-1)
        return -(q * log_p).sum(dim=-1).mean()

    def extra_repr(self) -> str:
        return f"exclude_diagonal={self.exclude_diagonal}"


class ListMLELoss(nn.Module):
    """ListMLE: ``-log P_PL(pi_teacher | student scores)`` per row, averaged (RankCSE §3.3).

    Ties in the teacher's scores are broken at random (``tie_break='random'``, as RankCSE shuffles the
    list before sorting) or by candidate index (``'stable'``, deterministic). RankCSE keeps the
    diagonal in the list (the positive, ranked first by any sane teacher); ``exclude_diagonal`` drops it.

    ``form``: ``'exact'`` — ``log sum_{l>=k} exp s_l`` as an exact reversed log-cumsum-exp;
    ``'reference'`` — RankCSE's / DALR's released formula: with ``s' = s - max_l s_l`` (row max),
    ``log( sum_{l>=k} exp s'_l + 1e-7 ) - s'_k``. The 1e-7 floor makes each tail term at most
    ``-log 1e-7 - s'_k`` (~16.1 + s'_k), so the two forms part once a row's logits span more than ~16
    nats (at tau = 0.05 a cosine spread of ~0.8).
    """

    FORMS = ("reference", "exact")
    REFERENCE_EPS = 1e-7   # RankCSE models.py ListMLE.eps

    def __init__(self, exclude_diagonal: bool = False, tie_break: str = "random", form: str = "exact"):
        super().__init__()
        if tie_break not in ("random", "stable"):
            raise ValueError(f"tie_break must be 'random' or 'stable', got {tie_break!r}")
        if form not in self.FORMS:
            raise ValueError(f"form must be 'reference' or 'exact', got {form!r}")
        self.exclude_diagonal = exclude_diagonal
        self.tie_break = tie_break
        self.form = form

    def teacher_order(self, teacher_logits: torch.Tensor) -> torch.Tensor:
        """Candidate indices of each row sorted by teacher score, highest first."""
        t = teacher_logits.detach()
        if self.tie_break == "random":
            perm = torch.randperm(t.size(-1), device=t.device)
            order = torch.sort(t[:, perm], dim=-1, descending=True, stable=True).indices
            return perm[order]
        return torch.sort(t, dim=-1, descending=True, stable=True).indices

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        s, t = fp32(student_logits), fp32(teacher_logits)
        if s.shape != t.shape:
            raise ValueError(f"student {tuple(s.shape)} and teacher {tuple(t.shape)} differ")
        if self.exclude_diagonal:
            n, m = s.shape
            if n != m:
                raise ValueError(f"exclude_diagonal needs a square similarity matrix, got {n}x{m}")
            keep = ~_diagonal_mask(n, m, s.device)
            s = s[keep].view(n, m - 1)
            t = t[keep].view(n, m - 1)
        order = self.teacher_order(t)
        ranked = s.gather(1, order)  # student scores in the teacher's order
        if self.form == "exact":
            # log sum_{l >= k} exp(ranked_l): a reversed cumulative logsumexp
            tail = torch.logcumsumexp(ranked.flip(-1), dim=-1).flip(-1)
        else:
            # the released formula: shift by the row max, floor the tail sums at 1e-7
            ranked = ranked - ranked.max(dim=-1, keepdim=True).values
            tail = torch.log(torch.cumsum(ranked.exp().flip(-1), dim=-1).flip(-1) + self.REFERENCE_EPS)
        return (tail - ranked).sum(dim=-1).mean()

    def extra_repr(self) -> str:
        return f"exclude_diagonal={self.exclude_diagonal}, tie_break={self.tie_break!r}, form={self.form!r}"


class DistributionAlignmentLoss(nn.Module):
    """``1/N sum_i KL( softmax(T_i / tau_t) || softmax(S_i / tau_s) )`` — the student's similarity
    distribution of row i matched to a target (soft-label) distribution.

    DALR §3.3 (global intra-modal alignment: S = student text–text similarities, T = teacher
    text–text similarities) and §3.2 (cross-modal soft labels: S = text–image similarities, T =
    image–image or teacher text–text similarities). ``forward(student_sims, target_sims)`` takes raw
    cosine similarities (not logits); the temperatures are this module's. DALR's code divides
    cosine/0.05 logits once more by 0.45 (an effective student temperature of 0.0225) and the target
    cosines by 0.5; those are the defaults here.
    """

    def __init__(self, student_temperature: float = 0.0225, target_temperature: float = 0.5):
        super().__init__()
        if student_temperature <= 0 or target_temperature <= 0:
            raise ValueError("temperatures must be > 0")
        self.student_temperature = float(student_temperature)
        self.target_temperature = float(target_temperature)

    def forward(self, student_sims: torch.Tensor, target_sims: torch.Tensor) -> torch.Tensor:
        s, t = fp32(student_sims), fp32(target_sims).detach()
        if s.shape != t.shape:
            raise ValueError(f"student {tuple(s.shape)} and target {tuple(t.shape)} differ")
        log_p = F.log_softmax(s / self.student_temperature, dim=-1)
        log_q = F.log_softmax(t / self.target_temperature, dim=-1)
        return (log_q.exp() * (log_q - log_p)).sum(dim=-1).mean()

    def extra_repr(self) -> str:
        return f"student_temperature={self.student_temperature}, target_temperature={self.target_temperature}"


class RankingConsistencyLoss(nn.Module):
    """RankCSE §3.2: ``1/N sum_i JS( softmax(l1_i) || softmax(l2_i) )`` with ``l1 = s(z1, z2)`` and
    ``l2 = s(z2, z1)`` (logits of the two dropout views), ``JS(P||Q) = (KL(P||M) + KL(Q||M)) / 2``,
    ``M = (P + Q) / 2``. Computed in log space; zero exactly when the two rows agree."""

    def forward(self, logits_1: torch.Tensor, logits_2: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(fp32(logits_1), dim=-1)
        log_q = F.log_softmax(fp32(logits_2), dim=-1)
        log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
        kl_pm = (log_p.exp() * (log_p - log_m)).sum(dim=-1)
        kl_qm = (log_q.exp() * (log_q - log_m)).sum(dim=-1)
        return (0.5 * (kl_pm + kl_qm)).mean()
