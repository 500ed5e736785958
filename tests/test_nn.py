"""labcore.nn: blocks and backbones — shapes, strides, gradients, parameter counts, init,
errors."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from labcore.nn import (
    BACKBONES,
    BasicBlock,
    Bottleneck,
    HRNetLite,
    ResNet,
    SimpleBaseline,
    build_backbone,
    conv_bn_relu,
    count_parameters,
    deconv_config,
    deconv_stack,
    init_pose_weights,
)
from labcore.nn.backbones import _HRModule


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _x(n=1, c=3, h=64, w=64):
    return torch.randn(n, c, h, w)


# ----------------------------------------------------------------------------- blocks

def test_conv_bn_relu_shapes_and_layers():
    m = conv_bn_relu(3, 8, kernel=3, stride=2)
    assert [type(x) for x in m] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert m(_x(h=32, w=48)).shape == (1, 8, 16, 24)
    dw = conv_bn_relu(8, 8, kernel=5, groups=8)
    assert dw[0].weight.shape == (8, 1, 5, 5)
    assert dw(torch.randn(1, 8, 9, 9)).shape == (1, 8, 9, 9)
    with pytest.raises(ValueError, match="odd"):
        conv_bn_relu(3, 8, kernel=4)
    with pytest.raises(ValueError, match="groups"):
        conv_bn_relu(3, 8, groups=2)
    with pytest.raises(ValueError, match="out_ch"):
        conv_bn_relu(3, 0)


def test_basic_block_shapes_and_shortcut():
    same = BasicBlock(16, 16)
    assert isinstance(same.shortcut, nn.Identity)
    assert same(torch.randn(2, 16, 8, 8)).shape == (2, 16, 8, 8)
    down = BasicBlock(16, 32, stride=2)
    assert isinstance(down.shortcut, nn.Sequential)
    assert down(torch.randn(2, 16, 8, 6)).shape == (2, 32, 4, 3)
    # parameter formula from the docstring: 9·in·out + 9·out² + 4·out (+ in·out + 2·out)
    assert count_parameters(same) == 9 * 16 * 16 + 9 * 16 * 16 + 4 * 16
    assert count_parameters(down) == 9 * 16 * 32 + 9 * 32 * 32 + 4 * 32 + 16 * 32 + 2 * 32


def test_bottleneck_widths_and_errors():
    b = Bottleneck(64, 256)
    assert b.mid_channels == 64 and b.conv2.stride == (1, 1)
    assert b(torch.randn(1, 64, 8, 8)).shape == (1, 256, 8, 8)
    b2 = Bottleneck(256, 512, stride=2)
    assert b2.conv2.stride == (2, 2)  # v1.5: stride on the 3x3
    assert b2(torch.randn(1, 256, 8, 8)).shape == (1, 512, 4, 4)
    assert isinstance(Bottleneck(32, 32).shortcut, nn.Identity)
    with pytest.raises(ValueError, match="multiple of expansion"):
        Bottleneck(16, 30)


@pytest.mark.parametrize("kernel, expected", [(4, (1, 0)), (3, (1, 1)), (2, (0, 0))])
def test_deconv_stack_doubles_resolution(kernel, expected):
    assert deconv_config(kernel) == expected
    m = deconv_stack(8, (6, 5), kernel=kernel)
    assert len(m) == 6
    deconv = m[0]
    assert deconv.stride == (2, 2) and deconv.bias is None
    assert (deconv.padding[0], deconv.output_padding[0]) == expected
    assert m(torch.randn(2, 8, 3, 5)).shape == (2, 5, 12, 20)


def test_deconv_stack_empty_and_errors():
    assert len(deconv_stack(8, ())) == 0
    with pytest.raises(ValueError, match="kernel"):
        deconv_stack(8, (8,), kernel=5)
    with pytest.raises(ValueError, match=r"channels\[1\]"):
        deconv_stack(8, (8, 0))
    with pytest.raises(TypeError, match="channels"):
        deconv_stack(8, 8)


def test_init_pose_weights():
    m = nn.Sequential(nn.Conv2d(16, 64, 3, bias=True), nn.BatchNorm2d(64),
                      nn.ConvTranspose2d(64, 64, 4))
    nn.init.constant_(m[1].weight, 3.0)
    init_pose_weights(m)
    for layer in (m[0], m[2]):
        std = float(layer.weight.detach().std())
        assert 0.0009 < std < 0.0011
        assert abs(float(layer.weight.detach().mean())) < 1e-4
    assert torch.all(m[0].bias == 0)
    assert torch.all(m[1].weight == 1) and torch.all(m[1].bias == 0)
    init_pose_weights(m, std=0.01)
    assert 0.009 < float(m[2].weight.detach().std()) < 0.011
    with pytest.raises(ValueError, match="std"):
        init_pose_weights(m, std=0.0)


def test_count_parameters():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert count_parameters(m) == 3 * 4 + 4 + 4 * 2 + 2
    m[0].weight.requires_grad_(False)
    assert count_parameters(m, trainable_only=True) == 4 + 4 * 2 + 2
    with pytest.raises(TypeError):
        count_parameters("resnet")


# ----------------------------------------------------------------------------- ResNet

@pytest.mark.parametrize("h, w", [(64, 64), (64, 96), (128, 32)])
def test_resnet_shapes_and_stages(h, w):
    m = ResNet()
    assert (m.in_channels, m.out_channels, m.stride) == (3, 256, 32)
    stages = m.forward_stages(_x(h=h, w=w))
    assert stages[-1].shape == (1, 256, h // 32, w // 32)
    assert [s.shape[1] for s in stages] == [32, 64, 128, 256]
    assert [(h // s.shape[2], w // s.shape[3]) for s in stages] == [(4, 4), (8, 8), (16, 16),
                                                                   (32, 32)]
    assert m.stage_strides == (4, 8, 16, 32)


def test_resnet_return_stages_bottleneck_and_event_channels():
    m = ResNet(return_stages=True)
    out = m(_x())
    assert isinstance(out, list) and len(out) == 4
    b = ResNet(block="bottleneck", layers=(1, 1, 1), widths=(32, 64, 128))
    assert b.stride == 16 and b(_x()).shape == (1, 128, 4, 4)
    e = ResNet(in_channels=10)
    assert e.stem[0].weight.shape[1] == 10
    assert e(_x(c=10)).shape == (1, 256, 2, 2)


def test_resnet_reference_parameter_counts():
    """Known ResNet-18/-50 trunk sizes (torchvision without fc) — the layout is the
    standard one."""
    r18 = ResNet(widths=(64, 128, 256, 512), stem_channels=64)
    assert count_parameters(r18) == 11_176_512
    r50 = ResNet(block="bottleneck", layers=(3, 4, 6, 3), widths=(256, 512, 1024, 2048),
                 stem_channels=64)
    assert count_parameters(r50) == 23_508_032


def test_resnet_errors():
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        ResNet(widths=(32, 0, 64, 128))
    with pytest.raises(ValueError, match=r"widths\[0\]"):
        ResNet(widths=(-1, 8, 8, 8))
    with pytest.raises(ValueError, match="same number of stages"):
        ResNet(layers=(2, 2), widths=(8, 16, 32))
    with pytest.raises(ValueError, match="block"):
        ResNet(block="dense")
    with pytest.raises(ValueError, match="multiple of 4"):
        ResNet(block="bottleneck", widths=(30, 64, 128, 256))
    with pytest.raises(TypeError, match="layers"):
        ResNet(layers=2)
    with pytest.raises(TypeError, match="in_channels"):
        ResNet(in_channels=3.0)


def test_forward_input_errors_are_clear():
    m = ResNet(layers=(1, 1, 1, 1), widths=(8, 8, 8, 8), stem_channels=8)
    with pytest.raises(ValueError, match=r"expected 3 input channels.*got 10 channels"):
        m(_x(c=10))
    with pytest.raises(ValueError, match=r"multiples of 32.*H=60, W=64"):
        m(_x(h=60))
    with pytest.raises(ValueError, match="4-D"):
        m(torch.randn(3, 64, 64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        m([[0.0]])
    with pytest.raises(TypeError, match="floating"):
        m(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


# ----------------------------------------------------------------------------- SimpleBaseline

@pytest.mark.parametrize(
    "deconvs, stride", [((128, 128, 128), 4), ((64, 32), 8), ((16,), 16), ((), 32)]
)
def test_simplebaseline_strides(deconvs, stride):
    m = SimpleBaseline(layers=(1, 1, 1, 1), deconv_channels=deconvs)
    assert m.stride == stride
    c = deconvs[-1] if deconvs else 256
    assert m.out_channels == c
    assert m(_x(h=64, w=96)).shape == (1, c, 64 // stride, 96 // stride)


def test_simplebaseline_default_and_event_channels():
    m = SimpleBaseline()
    assert (m.in_channels, m.out_channels, m.stride) == (3, 128, 4)
    assert m(_x()).shape == (1, 128, 16, 16)
    e = SimpleBaseline(in_channels=10, deconv_kernel=3)
    assert e(_x(c=10, h=128, w=64)).shape == (1, 128, 32, 16)
    up_free = SimpleBaseline(deconv_channels=())
    assert up_free.stride == 32 and up_free(_x()).shape == (1, 256, 2, 2)


def test_simplebaseline_init():
    m = SimpleBaseline()
    deconvs = [x for x in m.deconv if isinstance(x, nn.ConvTranspose2d)]
    assert len(deconvs) == 3
    for d in deconvs:
        assert 0.00095 < float(d.weight.detach().std()) < 0.00105
    stem_std = float(m.backbone.stem[0].weight.detach().std())
    fan_out = 32 * 7 * 7
    assert abs(stem_std - (2 / fan_out) ** 0.5) < 0.1 * (2 / fan_out) ** 0.5  # Kaiming


def test_simplebaseline_errors():
    with pytest.raises(ValueError, match="at most 5 deconvs"):
        SimpleBaseline(deconv_channels=(8,) * 6)
    with pytest.raises(ValueError, match=r"deconv_channels\[0\]"):
        SimpleBaseline(deconv_channels=(0,))
    with pytest.raises(ValueError, match="kernel"):
        SimpleBaseline(deconv_kernel=5)


# ----------------------------------------------------------------------------- HRNetLite

@pytest.mark.parametrize("widths", [(8, 16), (8, 16, 32), (8, 16, 32, 64)])
@pytest.mark.parametrize("output", ["highest", "concat"])
def test_hrnet_shapes(widths, output):
    m = HRNetLite(widths=widths, blocks=1, output=output, stem_channels=8)
    c = widths[0] if output == "highest" else sum(widths)
    assert (m.out_channels, m.stride) == (c, 4)
    assert m.size_divisor == 4 * 2 ** (len(widths) - 1)
    assert m(_x(h=64, w=96)).shape == (1, c, 16, 24)
    last = m.stages[-1][-1]
    assert len(last.fuse) == (1 if output == "highest" else len(widths))


def test_hrnet_default_modules_and_event_channels():
    m = HRNetLite(modules_per_stage=2, in_channels=10)
    assert len(m.stages) == 2 and all(len(s) == 2 for s in m.stages)
    assert m(_x(c=10)).shape == (1, 16, 16, 16)


def test_hrnet_exchange_unit_mixes_branches():
    mod = _HRModule((4, 8, 16), blocks=1).eval()
    xs = [torch.randn(1, 4, 16, 16), torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)]
    out = mod(xs)
    assert [o.shape for o in out] == [x.shape for x in xs]
    for changed in range(3):
        ys = [x.clone() for x in xs]
        ys[changed] = ys[changed] + 1.0
        out2 = mod(ys)
        for i in range(3):  # every output depends on every input branch
            assert not torch.allclose(out[i], out2[i]), (changed, i)
    # upsampling path is 1x1 conv + BN + nearest; downsampling uses strided 3x3 convs
    assert isinstance(mod.fuse[0][2][0], nn.Conv2d) and mod.fuse[0][2][0].kernel_size == (1, 1)
    assert sum(isinstance(x, nn.Conv2d) for x in mod.fuse[2][0]) == 2


def test_hrnet_errors():
    with pytest.raises(ValueError, match="widths"):
        HRNetLite(widths=(16,))
    with pytest.raises(ValueError, match="widths"):
        HRNetLite(widths=(8, 8, 8, 8, 8))
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        HRNetLite(widths=(16, 0))
    with pytest.raises(ValueError, match="output"):
        HRNetLite(output="sum")
    with pytest.raises(ValueError, match="blocks"):
        HRNetLite(blocks=0)
    with pytest.raises(ValueError, match="multiples of 16"):
        HRNetLite()(_x(h=72, w=64))


# ----------------------------------------------------------------------------- shared

_CHEAP = {
    "resnet": dict(layers=(1, 1, 1, 1), widths=(8, 8, 16, 16), stem_channels=8),
    "simplebaseline": dict(layers=(1, 1, 1, 1), widths=(8, 8, 16, 16), stem_channels=8,
                           deconv_channels=(8, 8, 8)),
    "hrnet_lite": dict(widths=(8, 16), blocks=1, stem_channels=8),
}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_gradients_reach_first_conv(name):
    m = build_backbone(name, in_channels=10, **_CHEAP[name])
    out = m(_x(n=2, c=10))
    assert out.shape[1] == m.out_channels and out.shape[-1] == 64 // m.stride
    out.square().mean().backward()
    first = next(x for x in m.modules() if isinstance(x, nn.Conv2d))
    assert first.in_channels == 10
    assert first.weight.grad is not None and float(first.weight.grad.abs().sum()) > 0
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("cls", [ResNet, SimpleBaseline, HRNetLite])
def test_default_parameter_count_matches_docstring(cls):
    documented = re.search(r"\*\*([\d,]+)\s+parameters\*\*", cls.__doc__)
    assert documented, f"{cls.__name__} docstring lacks a '**N parameters**' figure"
    assert count_parameters(cls()) == int(documented.group(1).replace(",", ""))


def test_hrnet_concat_parameter_count_matches_docstring():
    documented = re.search(r"``output='concat'``: ([\d,]+)\)", HRNetLite.__doc__)
    assert documented
    assert count_parameters(HRNetLite(output="concat")) == int(documented.group(1).replace(",", ""))


def test_build_backbone_registry_and_errors():
    assert set(BACKBONES) == {"resnet", "simplebaseline", "hrnet_lite"}
    assert isinstance(build_backbone("hrnet_lite", widths=(8, 16)), HRNetLite)
    with pytest.raises(ValueError, match=r"unknown backbone 'vit'.*hrnet_lite.*resnet"):
        build_backbone("vit")
    with pytest.raises(TypeError, match=r"unknown option.*'depth'.*widths"):
        build_backbone("resnet", depth=50)
    with pytest.raises(TypeError, match="name"):
        build_backbone(ResNet)
