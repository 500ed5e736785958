"""The command line, the samples, the figures and the explorers."""

import json

import nbformat
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from labcore import cli
from labcore.data import images, samples
from labcore.viz import figures, widgets
from labcore.viz.notebook import show_source


def test_doctor_reports_the_setup(capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "profile:  ci" in out and "body:" in out and "5/5 files" in out


def test_samples_are_bit_identical_to_a_fresh_regeneration():
    assert samples.check_samples() == []


def test_samples_load():
    crops = samples.load_sample("person_crops")
    assert crops["image"].shape == (32, 64, 64, 3)
    crowd = samples.load_sample("crowd_scene")
    assert crowd["image"].shape == (192, 256, 3)
    people = set(np.unique(crowd["person"])) - {-1}
    assert len(crowd["coco"]["annotations"]) <= len(people) + 1 and people
    with pytest.raises(ValueError, match="name"):
        samples.load_sample("faces")


def _notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)


def test_run_executes_notebooks_and_reports_failures(tmp_path, capsys):
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    _notebook(good, "import os\nprint(os.environ['LABCORE_PROFILE'])")
    _notebook(bad, "raise RuntimeError('boom')")
    out = tmp_path / "build"
    assert cli.main(["run", str(good), "--out", str(out), "--profile", "ci"]) == 0
    executed = nbformat.read(out / "good.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "ci"
    assert cli.main(["run", str(bad), "--out", str(out)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_image_conversions_round_trip():
    photo = images.load_photo()
    t = images.image_to_tensor(photo)
    assert t.shape == (3, 512, 512) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1
    np.testing.assert_array_equal(images.tensor_to_image(t), photo)
    with pytest.raises(TypeError, match="uint8"):
        images.image_to_tensor(photo.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        images.tensor_to_image(torch.zeros(4, 8, 8))


def test_figures_from_plain_arrays():
    rgb = figures.parts_to_rgb(np.array([[-1, 0], [13, 2]]))
    assert rgb.shape == (2, 2, 3) and tuple(rgb[0, 0]) == (20, 20, 20)
    flow = np.zeros((4, 4, 2), np.float32)
    flow[..., 0] = 1.0
    flow[0, 0] = (0.0, 0.0)
    colour = figures.flow_to_rgb(flow)
    assert colour[0, 0].max() == 0 and colour[1, 1].max() == 255
    fig = figures.image_figure(np.zeros((8, 8, 3), np.uint8), keypoints=np.full((17, 2), 3.0),
                               visibility=np.array([2, 1, 0] + [2] * 14), skeleton="coco17")
    markers = [t for t in fig.data if isinstance(t, go.Scatter) and t.mode == "markers"]
    assert len(markers) == 1 and len(markers[0].x) == 16  # v = 0 points are not drawn


def test_skeletons_figure_is_a_front_view():
    from labcore.body import load_body_model, pose_body
    from labcore.skeletons import COCO17

    rest = pose_body(load_body_model("toy"), betas=torch.zeros(1, 10))
    fig = figures.skeletons_figure(rest.keypoints[0].numpy(), names=("coco17",))
    joints = next(t for t in fig.data if t.mode == "markers+text")
    # Facing the viewer, the subject's left wrist is on the viewer's right.
    assert joints.x[COCO17.index("left_wrist")] > joints.x[COCO17.index("right_wrist")]


def test_show_source_excerpts_package_code():
    md = show_source(figures.flow_to_rgb, start="hsv =", lines=2)
    assert "hsv = np.zeros" in md.data and md.data.count("\n") < 8
    with pytest.raises(ValueError, match="start"):
        show_source(figures.flow_to_rgb, start="not in there")


def test_body_explorer_update_recomputes():
    e = widgets.BodyExplorer()
    rest = e.update()
    tall = e.update(beta_0=3.0, skeleton="coco17")
    height = lambda f: max(f.data[0].y) - min(f.data[0].y)  # noqa: E731
    assert height(tall) > height(rest) * 1.05
    assert e._controls["beta_0"].value == 3.0  # sliders follow values set from code
    assert sum(isinstance(t, go.Scatter3d) for t in tall.data) == 2  # bones and joints
    with pytest.raises(ValueError, match="unknown parameter"):
        e.update(beta_12=1.0)


def test_scene_and_frames_explorers():
    scene = widgets.SceneExplorer()
    fig = scene.update(seed=2, family="sitting", size=64)
    assert "sitting" in scene.info.value and len(fig.data) > 5
    frames = widgets.FramesExplorer()
    c4 = frames.chain(**{**frames.params, "stride": 4})
    c8 = frames.chain(**{**frames.params, "stride": 8})
    np.testing.assert_allclose(c4["kp_heatmap"] * 4, c4["kp_crop"], atol=1e-5)
    # Argmax + quarter-pixel decoding stays within the quantisation floor (stride / 2 per
    # axis in the crop), for a keypoint in the crop.
    for c, s in ((c4, 4), (c8, 8)):
        assert np.abs(c["decoded_crop"] - c["kp_crop"]).max() <= s / 2 + 1e-4
    fig = frames.update(joint="nose", stride=2)
    assert "error" in frames.info.value
    # The image and crop panels are PNG sources of exactly the chain's arrays, pixel centres
    # at integer coordinates (go.Image's default x0 = y0 = 0, dx = dy = 1).
    c = frames.chain(**frames.params)
    shown = [t for t in fig.data if isinstance(t, go.Image)]
    assert len(shown) == 2 and all(t.z is None and t.x0 is None and t.dx is None for t in shown)
    np.testing.assert_array_equal(_png_pixels(shown[0].source), c["image"])
    np.testing.assert_array_equal(_png_pixels(shown[1].source), c["crop"])


def _png_pixels(source: str) -> np.ndarray:
    import base64

    import cv2

    assert source.startswith("data:image/png;base64,")
    png = np.frombuffer(base64.b64decode(source.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(png, cv2.IMREAD_COLOR)[..., ::-1]


def test_png_data_uri_round_trips_and_add_image_panel_keeps_the_axes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_png_pixels(figures.png_data_uri(image)), image)
    with pytest.raises(ValueError, match="uint8"):
        figures.png_data_uri(image.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        figures.png_data_uri(image[..., 0])
    as_z = figures.add_image_panel(go.Figure(), image)
    as_png = figures.add_image_panel(go.Figure(), image, png=True)
    np.testing.assert_array_equal(_png_pixels(as_png.data[0].source), np.asarray(as_z.data[0].z))
    assert as_png.layout.xaxis.range == as_z.layout.xaxis.range == (-0.5, 6.5)
    assert as_png.layout.yaxis.range == as_z.layout.yaxis.range == (4.5, -0.5)


def test_notebooks_are_committed_clean():
    from pathlib import Path

    for path in sorted((Path(cli.repo_root()) / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        assert "widgets" not in nb["metadata"]
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
