"""Class term for conditional networks: the cross-entropy of a conditional D's logits over all classes
(as AC-GAN's auxiliary classifier, Odena et al. 2017, trained on reals only): reals train D to classify,
fakes train G to be classified, so G cannot ignore its class."""
from .registry import LossTerm, LossTermSpec, register


class ClassLoss(LossTerm):
    phases = frozenset({'G', 'D'})
    stat = 'class'
    needs_class_logits = True

    def G_value(self, ctx):
        return ctx.gen_ce

    def D_value(self, ctx):
        return ctx.real_ce


register(LossTermSpec(name='class', build=ClassLoss, description='cross-entropy of D\'s logits of all classes '
                      '(needs --cond)'))
