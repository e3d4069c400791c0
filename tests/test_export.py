"""Episode export: a real recorded episode file drawn to real GIF and MP4 files, read back and counted."""
import os

import imageio.v2 as iio
import numpy as np
import pytest

from models.files.episode_file import load_episode
from workbench.cli import main
from workbench.export import PANELS, ExportError, FrameComposer, export_episode, render_frame


@pytest.fixture(scope="module")
def ep(episode_path):
    return load_episode(episode_path)


def _gif_frames(path) -> np.ndarray:
    return np.stack([f[..., :3] for f in iio.mimread(path, memtest=False)])


def test_gif_has_one_frame_per_step_and_shows_each_state(ep, episode_path, tmp_path):
    out = tmp_path / "ep.gif"
    path, n = export_episode(episode_path, out, fmt="gif")
    assert path == out and n == ep.length > 1
    frames = _gif_frames(out)
    assert len(frames) == ep.length
    H, W = frames.shape[1:3]
    assert H % 2 == 0 and W % 2 == 0
    # frame i is state i (1..T): it matches the composer's drawing of that state up to the 255-colour palette
    comp = FrameComposer(ep)
    for i in (1, ep.length // 2, ep.length):
        ref = comp.frame(i).astype(int)
        assert ref.shape == frames[i - 1].shape
        assert np.abs(frames[i - 1].astype(int) - ref).mean() < 2.0
    assert np.abs(frames[-1].astype(int) - comp.frame(1).astype(int)).mean() > 0.5  # the battle moves
    assert not list(tmp_path.glob("*.tmp*"))


def test_mp4_has_one_frame_per_step(ep, episode_path, tmp_path):
    import imageio_ffmpeg

    out = tmp_path / "ep.mp4"
    path, n = export_episode(episode_path, out, fmt="mp4", fps=10)
    assert n == ep.length
    frames, secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert frames == ep.length
    assert secs == pytest.approx(ep.length / 10, abs=0.11)
    r = iio.get_reader(str(path), format="FFMPEG")
    try:
        first = r.get_data(0)
    finally:
        r.close()
    ref = render_frame(ep, 1)
    assert first.shape == ref.shape  # not resized to a multiple of 16
    assert np.abs(first.astype(int) - ref.astype(int)).mean() < 6.0  # H.264 at CRF 20


def test_cli_export_and_panels_widen_the_frame(ep, episode_path, tmp_path, capsys):
    alone, beside = tmp_path / "a.gif", tmp_path / "b.gif"
    assert main(["export", episode_path, "--gif", str(alone)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {alone} ({ep.length} frames)"
    assert main(["export", episode_path, "--gif", str(beside), "--panels", "arena,qvalues,qtot", "--fps", "12"]) == 0
    assert f"({ep.length} frames)" in capsys.readouterr().out
    a, b = _gif_frames(alone), _gif_frames(beside)
    assert len(a) == len(b) == ep.length
    assert b.shape[2] > a.shape[2] + 200  # the panels' column
    assert b.shape[1] % 2 == 0 and b.shape[2] % 2 == 0
    from PIL import Image

    with Image.open(alone) as a_im, Image.open(beside) as b_im:  # GIF delays are whole hundredths of a second
        assert (a_im.info["duration"], b_im.info["duration"], a_im.info["loop"]) == (120, 80, 0)


def test_composite_frame_draws_every_panel(ep):
    comp = FrameComposer(ep, PANELS)
    columns = [[name for name, *_ in col] for col in comp.columns]
    try:
        frame = comp.frame(ep.length)
    finally:
        comp.close()
    H, W, _ = frame.shape
    assert (H, W) == comp.size[::-1] and H % 2 == 0 and W % 2 == 0
    assert H > render_frame(ep, 1).shape[0]  # the arena grows to the panels' height
    # more panels than one column holds legibly: qvalues and qtot, then joint and mixer; each panel's quarter of
    # the side has drawn pixels (plots, text), not just background
    assert columns == [["qvalues", "qtot"], ["joint", "mixer"]]
    side = frame[:, comp.arena_width:]
    for half in np.array_split(side, 2, axis=1):
        for q in np.array_split(half, 2, axis=0):
            assert (np.abs(q.astype(int) - 12).max(-1) > 40).mean() > 0.01
    from PIL import Image

    Image.fromarray(render_frame(ep, ep.length // 2, ("arena", "qvalues", "qtot"))).save("/tmp/export_frame.png")


def test_bad_requests_are_one_clear_error(episode_path, tmp_path, capsys):
    with pytest.raises(ExportError, match=r"unknown panel 'qvalue'; panels: arena, qvalues, qtot, joint, mixer"):
        export_episode(episode_path, tmp_path / "x.gif", panels=["arena", "qvalue"])
    missing = tmp_path / "nowhere"
    with pytest.raises(ExportError, match=f"output directory '{missing}' does not exist"):
        export_episode(episode_path, missing / "x.gif")
    for fps in (0, -1, 0.001, 51, float("nan"), "fast"):  # 0.001 overflowed GIF's frame delay; > 50 plays at 10
        with pytest.raises(ExportError, match=r"fps: expected a number in \[0.1, 50\] for GIF"):
            export_episode(episode_path, tmp_path / "x.gif", fps=fps)
    with pytest.raises(ExportError, match=r"fps: expected a number in \[0.1, 60\] for MP4"):
        export_episode(episode_path, tmp_path / "x.mp4", fmt="mp4", fps=61)
    with pytest.raises(ExportError, match=r"x.gif: a MP4 goes in a .mp4 file \(got .gif\)"):
        export_episode(episode_path, tmp_path / "x.gif", fmt="mp4")
    with pytest.raises(ExportError, match="format 'webm'"):
        export_episode(episode_path, tmp_path / "x.webm", fmt="webm")
    with pytest.raises(ExportError, match="is a directory"):
        export_episode(episode_path, tmp_path, fmt="gif")
    # through the CLI: one line, exit code 2, nothing written
    assert main(["export", episode_path, "--gif", str(tmp_path / "y.gif"), "--panels", "arena,bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown panel 'bogus'" in err and "qvalues" in err
    assert main(["export", str(tmp_path / "none.npz"), "--mp4", str(tmp_path / "y.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_an_interrupted_export_leaves_no_file(episode_path, tmp_path):
    out = tmp_path / "ep.gif"
    out.write_bytes(b"an earlier export")

    def stop(i, T):
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_episode(episode_path, out, progress=stop)
    assert out.read_bytes() == b"an earlier export"
    assert sorted(os.listdir(tmp_path)) == ["ep.gif"]
