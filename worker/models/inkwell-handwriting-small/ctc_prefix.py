"""Joint CTC/attention decoding: a CTC head over the encoder's columns re-ranks the decoder's choices.

Models trained with a CTC head beside the decoder (the bundled model) align text to the image
far sooner than their attention decoder learns to; combining both at decoding time (Watanabe et
al., "Hybrid CTC/Attention Architecture for End-to-End Speech Recognition", 2017) keeps the
decoder from repeating or skipping words. It runs inside Hugging Face ``generate`` as a logits
processor: at each step the decoder's ``top_k`` candidates are scored by
``weight * log p_ctc(prefix + candidate) + (1 - weight) * log p_attention(candidate)`` (CTC as a
prefix score), and every other token is ruled out. The decoder's own probabilities are still
what confidences report, and its cross-attention is still what the maps show.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

NEG = -1e30


class CTCPrefixScorer(LogitsProcessor):
    """Keeps, per batch row, the CTC forward variables of the prefix decoded so far."""

    def __init__(self, ctc_log_probs: torch.Tensor, blank_id: int, eos_id: int, weight: float = 0.5, top_k: int = 8) -> None:
        # ctc_log_probs: batch x frames x vocabulary (log-softmax of the CTC head)
        self.x = ctc_log_probs.float()
        self.batch, self.frames, _ = self.x.shape
        self.blank_id, self.eos_id = blank_id, eos_id
        self.weight, self.top_k = weight, top_k
        blank = self.x[:, :, blank_id]
        # the empty prefix: only blanks so far (r_n = -inf, r_b = cumulative blank)
        self.r_n = torch.full((self.batch, self.frames), NEG)
        self.r_b = torch.cumsum(blank, dim=1)
        self.psi = torch.zeros(self.batch)
        self.last = torch.full((self.batch,), -1, dtype=torch.long)
        self.length = 0
        self._pending: tuple | None = None

    def _extend(self, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prefix scores and forward variables of each row's prefix extended by each candidate (batch x k).

        The CTC forward recursions are linear in log space, so each is one cumulative
        log-sum-exp over the frames instead of a loop over them.
        """
        b, k = candidates.shape
        x_c = torch.gather(self.x, 2, candidates.unsqueeze(1).expand(b, self.frames, k))  # b x T x k
        x_blank = self.x[:, :, self.blank_id].unsqueeze(2).expand(b, self.frames, k)
        r_n_prev, r_b_prev = self.r_n.unsqueeze(2), self.r_b.unsqueeze(2)
        same = candidates == self.last.unsqueeze(1)  # repeating the last token needs a blank in between
        phi = torch.where(same.unsqueeze(1), r_b_prev, torch.logaddexp(r_n_prev, r_b_prev))  # b x T x k
        start = x_c[:, 0] if self.length == 0 else torch.full((b, k), NEG)  # r_n at the first frame
        # r_n[t] = logaddexp(r_n[t-1], phi[t-1]) + x_c[t]
        emitted = torch.cumsum(x_c, dim=1)
        entry = torch.cat([(start - emitted[:, 0]).unsqueeze(1), phi[:, :-1] - emitted[:, :-1]], dim=1)
        r_n = emitted + torch.logcumsumexp(entry, dim=1)
        # r_b[t] = logaddexp(r_b[t-1], r_n[t-1]) + x_blank[t], r_b[0] = -inf
        blanks = torch.cumsum(x_blank, dim=1)
        entry = torch.cat([torch.full((b, 1, k), NEG), r_n[:, :-1] - blanks[:, :-1]], dim=1)
        r_b = blanks + torch.logcumsumexp(entry, dim=1)
        psi = torch.logaddexp(start, torch.logsumexp(phi[:, :-1] + x_c[:, 1:], dim=1))
        is_eos = candidates == self.eos_id  # ending here: the whole prefix must have been emitted
        final = torch.logaddexp(self.r_n[:, -1], self.r_b[:, -1]).unsqueeze(1).expand(b, k)
        return torch.where(is_eos, final, psi), r_n, r_b

    def _advance(self, chosen: torch.Tensor) -> None:
        """Take the forward variables of the candidate each row actually chose."""
        if self._pending is None:
            return
        candidates, psi, r_n, r_b = self._pending
        match = candidates == chosen.unsqueeze(1)
        index = torch.where(match.any(dim=1), match.float().argmax(dim=1), torch.zeros_like(chosen))
        rows = torch.arange(self.batch)
        self.r_n, self.r_b = r_n[rows, :, index], r_b[rows, :, index]
        self.psi = psi[rows, index]
        self.last = chosen.clone()
        self.length += 1
        self._pending = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[1] > 1:  # the token chosen at the previous step
            self._advance(input_ids[:, -1].cpu())
        attention = torch.log_softmax(scores.float(), dim=-1).cpu()
        candidates = attention.topk(min(self.top_k, attention.shape[-1]), dim=-1).indices
        psi, r_n, r_b = self._extend(candidates)
        self._pending = (candidates, psi, r_n, r_b)
        combined = self.weight * (psi - self.psi.unsqueeze(1)) + (1 - self.weight) * torch.gather(attention, 1, candidates)
        out = torch.full_like(scores, NEG)
        out.scatter_(1, candidates.to(scores.device), combined.to(scores.device, scores.dtype))
        return out
