"""The published CIFAR-10 network: 84,904 parameters, receptive field 103 at the output, built of torch's own layers."""

import torch.nn.functional as F
from torch import nn

from helpers.config import DROPOUT, NUM_CLASSES


def bn_relu(channels, dropout=True):
    """BatchNorm -> ReLU [-> Dropout]: what follows every convolution but the pool and the last."""
    layers = [nn.BatchNorm2d(channels), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(DROPOUT))
    return layers


def conv_block(ch_in, ch_out, kernel_size=3, padding=1, dropout=True, **conv_kwargs):
    """Conv (no bias, BatchNorm follows) -> BatchNorm -> ReLU [-> Dropout]."""
    conv = nn.Conv2d(ch_in, ch_out, kernel_size, padding=padding, bias=False, **conv_kwargs)
    return [conv, *bn_relu(ch_out, dropout)]


def depthwise_separable(channels, dropout=True):
    """3x3 depthwise conv -> 1x1 pointwise conv (both with bias, as published) -> BatchNorm -> ReLU."""
    return [
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
        nn.Conv2d(channels, channels, 1),
        *bn_relu(channels, dropout),
    ]


class Net(nn.Module):
    """C1 (32x32) -> 1x1 stride-2 'pool' conv -> C2 (16x16, depthwise + dilated) -> C3 (8x8) -> C4 (4x4) -> GAP."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.block1 = nn.Sequential(
            *conv_block(3, 32),
            *conv_block(32, 32),
            *conv_block(32, 64, padding=0),  # 32 -> 30
        )
        # The published "pool": a 1x1 conv with stride 2 and padding 1 (30 -> 16), no BatchNorm.
        self.pool = nn.Conv2d(64, 64, 1, stride=2, padding=1, bias=False)
        self.block2 = nn.Sequential(
            *conv_block(64, 64, kernel_size=1, padding=0),
            *depthwise_separable(64, dropout=False),
            *conv_block(64, 32, padding=2, dilation=2),  # dilated: effective kernel 5
            *conv_block(32, 32, stride=2),  # 16 -> 8
        )
        self.block3 = nn.Sequential(
            *conv_block(32, 24, dropout=False),
            *depthwise_separable(24),
            *conv_block(24, 16, stride=2),  # 8 -> 4
        )
        self.block4 = nn.Sequential(
            *conv_block(16, 16),
            nn.Conv2d(16, num_classes, 3, padding=1, bias=False),
            nn.AvgPool2d(4),
        )

    def logits(self, x):
        """Class scores before the log-softmax: what Grad-CAM explains."""
        return self.block4(self.block3(self.block2(self.pool(self.block1(x))))).flatten(1)

    def forward(self, x):
        return F.log_softmax(self.logits(x), dim=-1)
