"""StyleGAN2 loss (Karras et al. 2020): non-saturating logistic loss, R1, path-length regularisation,
plus any further weighted terms of the main G and D phases (`terms`: objects with the interface of
fsgan.losses.LossTerm, e.g. mode seeking or the class term of conditional networks). A term may also choose the
latents of a batch's fakes and compute D's logits for a batch (CDC's anchors and patch-level D).

Every image D sees (reals and fakes, main phases, R1 and the class term) passes through one augmentation
(`augment_for_D`, training.augment); R1 takes the gradient with respect to the un-augmented reals through it.

Phases follow stylegan2-ada-pytorch: 'Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth'.
With lazy regularisation, the '*main' phases run every step and the '*reg' phases every
G_reg_interval / D_reg_interval steps with the loss multiplied by that interval.
"""
import numpy as np
import torch

from dnnlib import EasyDict
from torch_utils import training_stats


class StyleGAN2Loss:
    """Accumulates gradients of one phase into G and D."""

    def __init__(self,
        G,                          # Generator (mapping + synthesis), in training mode.
        D,                          # Discriminator.
        style_mixing_prob=0.9,      # Probability of mixing two latents at a random layer.
        r1_gamma=10,                # R1 weight (gamma); 0 = disable.
        pl_batch_shrink=2,          # Batch size divisor for the path-length penalty.
        pl_decay=0.01,              # Decay of the path-length running mean.
        pl_weight=2,                # Path-length penalty weight; 0 = disable.
        update_w_avg=True,          # Let the mapping network track w_avg?
        terms=(),                   # Further weighted terms of the main phases (fsgan.losses.LossTerm), in order.
        augment=None,               # training.augment.Augment applied to every image D sees; None = none.
    ):
        self.G = G
        self.D = D
        self.style_mixing_prob = style_mixing_prob
        self.r1_gamma = r1_gamma
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.pl_weight = pl_weight
        self.update_w_avg = update_w_avg
        self.terms = list(terms)
        self.class_logits = any(t.needs_class_logits for t in self.terms)
        self.augment = augment
        self.pl_mean = torch.zeros([])

    def run_G(self, z, c, ws_requires_grad=False, mix=True):
        """z: [N, z_dim] -> (img [N, C, R, R], ws [N, num_ws, w_dim]); mixes styles with prob style_mixing_prob
        (never with mix=False).

        ws_requires_grad: make ws differentiable even when the mapping network is frozen.
        """
        ws = self.G.mapping(z, c, skip_w_avg_update=not self.update_w_avg)
        if ws_requires_grad and not ws.requires_grad:
            ws = ws.detach().requires_grad_(True)
        if mix and self.style_mixing_prob > 0:
            cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
            cutoff = torch.where(torch.rand([], device=ws.device) < self.style_mixing_prob, cutoff,
                                 torch.full_like(cutoff, ws.shape[1]))
            mixed = self.G.mapping(torch.randn_like(z), c, skip_w_avg_update=True)
            layer = torch.arange(ws.shape[1], device=ws.device)[None, :, None]  # [1, num_ws, 1]
            ws = torch.where(layer >= cutoff, mixed, ws)  # a mask, not ws[:, cutoff:]: no host sync
        return self.G.synthesis(ws), ws

    def augment_for_D(self, img):
        """img [N, C, R, R] -> the augmented images D sees (every image into D passes here)."""
        return img if self.augment is None else self.augment(img)

    def run_D(self, img, c):
        """img: [N, C, R, R] -> logits [N, 1] of the augmented images, or [N, K] where a term gives D's logits for
        this batch (LossTerm.D_logits, e.g. CDC's patch-level D)."""
        img = self.augment_for_D(img)
        for term in self.terms:
            logits = term.D_logits(self.D, img, c)
            if logits is not None:
                return logits
        return self.D(img, c)

    def begin_batch(self, batch_idx):
        """Before each training step (batch_idx = steps done so far): terms with a per-step schedule follow it."""
        for term in self.terms:
            term.begin_batch(batch_idx)

    def run_fakes(self, z, c):
        """A main phase's fakes: z [N, z_dim] -> (img [N, C, R, R], the latents used [N, z_dim]). A term may choose
        the batch's latents instead (LossTerm.gen_latents, e.g. CDC's anchors); those are used without mixing."""
        for term in self.terms:
            chosen = term.gen_latents(z)
            if chosen is not None:
                return self.run_G(chosen, c, mix=False)[0], chosen
        return self.run_G(z, c)[0], z

    def run_D_classes(self, img, c):
        """Conditional D: img [N, C, R, R], one-hot c [N, c_dim] -> (logits [N, 1] for c, cross-entropy [N] of
        the logits of all classes against c)."""
        all_logits = self.D.class_logits(self.augment_for_D(img))
        ce = torch.nn.functional.cross_entropy(all_logits, c.argmax(1), reduction='none')
        return (all_logits * c).sum(1, keepdim=True), ce

    def add_terms(self, net, ctx, loss, losses):
        """loss + weight x mean value of every term of `net` ('G' or 'D'), in order; records each in losses."""
        for term in self.terms:
            if net not in term.phases:
                continue
            value = term.G_value(ctx) if net == 'G' else term.D_value(ctx)
            if value is None:
                continue
            training_stats.report(f'Loss/{net}/{term.stat}', value)
            losses[net + term.stat] = value.mean()
            loss = loss + value.mean() * term.weight
        return loss

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain):
        """Add the gradients of `phase`'s loss (times `gain`) to the .grad of the trainable tensors.

        Returns {loss name: 0-dim tensor}, left on the device (reading them would wait for it)."""
        assert phase in ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth')
        do_Gmain = phase in ('Gmain', 'Gboth')
        do_Dmain = phase in ('Dmain', 'Dboth')
        do_Gpl = phase in ('Greg', 'Gboth') and self.pl_weight != 0
        do_Dr1 = phase in ('Dreg', 'Dboth') and self.r1_gamma != 0
        losses = {}
        if do_Gmain:
            gen_z = self.G_main(real_img, gen_z, gen_c, gain, losses)
        if do_Gpl:
            self.G_path_length(gen_z, gen_c, gain, losses)
        loss_Dgen = self.D_fakes(gen_z, gen_c, gain, losses) if do_Dmain else None
        if do_Dmain or do_Dr1:
            self.D_reals(real_img, real_c, do_Dmain, do_Dr1, loss_Dgen, gain, losses)
        return {k: v.detach() for k, v in losses.items()}

    def G_main(self, real_img, gen_z, gen_c, gain, losses):
        """softplus(-D(G(z))): the non-saturating generator loss, plus the G terms. Returns the latents used."""
        gen_img, gen_z = self.run_fakes(gen_z, gen_c)
        gen_ce = None
        if self.class_logits:
            gen_logits, gen_ce = self.run_D_classes(gen_img, gen_c)
        else:
            gen_logits = self.run_D(gen_img, gen_c)
        loss_Gmain = torch.nn.functional.softplus(-gen_logits)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/G/loss', loss_Gmain)
        losses['G'] = loss = loss_Gmain.mean()
        ctx = EasyDict(gen_img=gen_img, gen_z=gen_z, gen_c=gen_c, real_img=real_img, gen_ce=gen_ce,
                       G=self.G, D=self.D)
        loss = self.add_terms('G', ctx, loss, losses)
        loss.mul(gain).backward()
        return gen_z

    def G_path_length(self, gen_z, gen_c, gain, losses):
        """Path-length regularisation (StyleGAN2 Sec. 3.2): (|J^T y| - a)^2, y ~ N(0, I) / sqrt(H W), a the running
        mean of |J^T y| (decay pl_decay), on batch / pl_batch_shrink samples."""
        batch_size = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:batch_size], gen_c[:batch_size], ws_requires_grad=True)
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                                       create_graph=True, only_inputs=True)[0]
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
        self.pl_mean = self.pl_mean.to(pl_lengths.device)
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)  # with its gradient, as stylegan2-ada
        self.pl_mean.copy_(pl_mean.detach())
        pl_penalty = (pl_lengths - pl_mean).square()
        training_stats.report('Loss/pl_penalty', pl_penalty)
        loss_Gpl = pl_penalty * self.pl_weight
        training_stats.report('Loss/G/reg', loss_Gpl)
        losses['Gpl'] = loss_Gpl.mean()
        (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()

    def D_fakes(self, gen_z, gen_c, gain, losses):
        """softplus(D(G(z))) on fakes. Returns the per-sample loss [N, 1]."""
        with torch.no_grad():
            gen_img, _z = self.run_fakes(gen_z, gen_c)
        gen_logits = self.run_D(gen_img, gen_c)
        loss_Dgen = torch.nn.functional.softplus(gen_logits)
        training_stats.report('Loss/scores/fake', gen_logits)
        losses['Dgen'] = loss_Dgen.mean()
        loss_Dgen.mean().mul(gain).backward()
        return loss_Dgen

    def D_reals(self, real_img, real_c, do_Dmain, do_Dr1, loss_Dgen, gain, losses):
        """softplus(-D(x)) on reals with the D terms (do_Dmain), and R1 = gamma/2 |grad_x D(x)|^2 (do_Dr1)."""
        real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
        real_ce = None
        if do_Dmain and self.class_logits:
            real_logits, real_ce = self.run_D_classes(real_img_tmp, real_c)
        else:
            real_logits = self.run_D(real_img_tmp, real_c)
        training_stats.report('Loss/scores/real', real_logits)
        training_stats.report('Loss/signs/real', real_logits.sign())
        if self.augment is not None:
            self.augment.observe_real_logits(real_logits)
        loss = torch.zeros([], device=real_img.device)
        if do_Dmain:
            loss_Dreal = torch.nn.functional.softplus(-real_logits)
            training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)
            losses['Dreal'] = loss_Dreal.mean()
            loss = loss + loss_Dreal.mean()
            loss = self.add_terms('D', EasyDict(real_img=real_img, real_c=real_c, real_ce=real_ce), loss, losses)
        if do_Dr1:
            r1_grads = torch.autograd.grad(outputs=[real_logits.mean(1).sum()], inputs=[real_img_tmp],  # [N, K]
                                           create_graph=True, only_inputs=True)[0]
            r1_penalty = r1_grads.square().sum([1, 2, 3])
            loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
            training_stats.report('Loss/r1_penalty', r1_penalty)
            training_stats.report('Loss/D/reg', loss_Dr1)
            losses['Dr1'] = loss_Dr1.mean()
            loss = loss + loss_Dr1.mean()
        (real_logits * 0).mean().add(loss).mul(gain).backward()
