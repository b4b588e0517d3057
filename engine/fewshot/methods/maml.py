"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017), second- and first-order.

For each task the network is adapted by a few gradient steps on the support loss, starting from
the meta-learned initialisation; meta-training backpropagates the query loss of the adapted
network to the initialisation, through the inner steps (second order) or around them (first
order, FOMAML). Adaptation works on a **copy** of the parameters held in a dict and applied with
``torch.func.functional_call``: the shared module is never changed by a call.

Batch normalisation always uses the statistics of the batch at hand (no running statistics), as
in Finn et al.'s implementation: the support set during adaptation, and the support set together
with the queries when they are classified, so one query alone is normalised like a batch.

The classification head is set to zero at the start of every task (the "zeroing trick" of Kao,
Chiu & Chen, ICLR 2022), so a model meta-trained at one N can be adapted to any N; only the
backbone is meta-learned. Note that with a zero head the first step only moves the head.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from engine.fewshot.methods.base import (FewShotClassifier, TrainSetup, check_support,
                                         register_method, resolve_feature_dim)


@register_method("maml")
class MAML(FewShotClassifier):
    """MAML over a backbone with a linear head zeroed per task (second order).

    Args:
        backbone: feature extractor, (B, ...) -> (B, D).
        feature_dim: D; None = ask the backbone (64 for Conv-4 on 28x28).
        inner_steps: gradient steps on the support set per task (configurable at meta-test).
        inner_lr: step size of those steps.

    Attributes:
        inner_losses: after :meth:`process_support_set`, the support cross-entropy before each
            step and after the last one (``inner_steps + 1`` floats).
    """

    title = "MAML (a few gradient steps on the support set, second order)"
    short_title = "MAML"
    train_setup = TrainSetup()
    adapts_weights = True
    #: FOMAML: meta-gradients ignore second derivatives (:class:`FirstOrderMAML`).
    first_order = False

    def __init__(self, backbone: nn.Module | None = None, feature_dim: int | None = None,
                 inner_steps: int = 2, inner_lr: float = 0.4) -> None:
        super().__init__(backbone)
        if inner_steps < 0 or inner_lr < 0:
            raise ValueError(f"inner_steps ({inner_steps}) and inner_lr ({inner_lr}) must be >= 0")
        self.feature_dim = resolve_feature_dim(backbone, feature_dim)
        self.inner_steps, self.inner_lr = inner_steps, inner_lr
        self.fast: dict[str, torch.Tensor] | None = None
        self.inner_losses: list[float] = []
        self._support: torch.Tensor | None = None
        for module in self.backbone.modules():  # transductive BN: batch statistics only
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.track_running_stats = False
                module.running_mean = module.running_var = module.num_batches_tracked = None

    def _logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        body = {k[len("backbone."):]: v for k, v in params.items() if k.startswith("backbone.")}
        feats = functional_call(self.backbone, body, (x,))  # (B, D)
        return feats @ params["head.weight"].T + params["head.bias"]

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        """Adapt a copy of the parameters to the support set (stored as ``self.fast``)."""
        self.n_way = check_support(support, labels)
        self.support_labels, self._support = labels, None
        meta = self.training and torch.is_grad_enabled()  # meta-training: keep the graph
        params = {f"backbone.{k}": (v if meta else v.detach().clone().requires_grad_())
                  for k, v in self.backbone.named_parameters()}
        params["head.weight"] = support.new_zeros(self.n_way, self.feature_dim, requires_grad=True)
        params["head.bias"] = support.new_zeros(self.n_way, requires_grad=True)
        second_order = meta and not self.first_order
        self.inner_losses = []
        with torch.enable_grad():
            for _ in range(self.inner_steps):
                loss = nn.functional.cross_entropy(self._logits(params, support), labels)
                self.inner_losses.append(loss.item())
                names = [k for k, v in params.items() if v.requires_grad]
                grads = torch.autograd.grad(loss, [params[k] for k in names],
                                            create_graph=second_order, allow_unused=True)
                for k, g in zip(names, grads):
                    if g is not None:
                        params[k] = params[k] - self.inner_lr * (g if second_order else g.detach())
                if not meta:  # inference: no graph across steps
                    params = {k: v.detach().requires_grad_() for k, v in params.items()}
        with torch.no_grad():
            final = nn.functional.cross_entropy(self._logits(params, support), labels)
        self.inner_losses.append(float(final))
        self.fast = params if meta else {k: v.detach() for k, v in params.items()}
        self._support = support  # (support features for a plot: call embed(support))

    def _with_support(self, params: dict[str, torch.Tensor] | None, x: torch.Tensor):
        """Run x in one batch with the support set (for BN statistics); (B, ...) -> (B, D)."""
        body = None if params is None else {
            k[len("backbone."):]: v for k, v in params.items() if k.startswith("backbone.")}
        batch = x if self._support is None else torch.cat([self._support, x])
        feats = (self.backbone(batch) if body is None
                 else functional_call(self.backbone, body, (batch,)))
        return feats[batch.shape[0] - x.shape[0]:]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) -> (B, D) features of the adapted backbone (the meta-learned one before)."""
        return self._with_support(self.fast, x)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) -> (Q, N) logits of the adapted network (BN over support + queries)."""
        if self.fast is None:
            raise RuntimeError("call process_support_set() before forward()")
        feats = self._with_support(self.fast, query)  # (Q, D)
        return feats @ self.fast["head.weight"].T + self.fast["head.bias"]


@register_method("maml-fo")
class FirstOrderMAML(MAML):
    """First-order MAML (FOMAML): the query gradient at the adapted parameters is applied to
    the initialisation, ignoring second derivatives (same arguments as :class:`MAML`)."""

    title = "First-order MAML (gradient steps on the support set, no second derivatives)"
    short_title = "First-order MAML"
    first_order = True
