#!/usr/bin/env python
"""Benchmark final assembly: the product (`vidgen.media.assembly.assemble`) against one plain ffmpeg command.

For each requested length it generates synthetic inputs like the providers deliver (1080p30 H.264 clips of
10 s, 22.05 kHz mono narration with word timings, 44.1 kHz stereo ambience per scene), then runs

* the product, in a fresh Python process, and
* a plain hand-written ffmpeg command: concat demuxer over the clips (trimmed with `outpoint`), the
  narration laid out with adelay/apad/concat, the ambience through its own concat demuxer, one
  amix + loudnorm pass, encoding the same codecs with the same x264 settings,

and prints wall time, CPU time and peak memory of each. Peak RSS is polled from /proc over the whole
process tree (the sum of every live process), and cross-checked with getrusage(RUSAGE_CHILDREN).

    uv run python scripts/bench_assembly.py --minutes 1 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vidgen.media.assembly import AssemblyRequest, SceneMedia, assemble  # noqa: E402
from vidgen.media.ffmpeg import ffmpeg_exe, probe  # noqa: E402
from vidgen.media.synthetic import make_ambience, make_clip, make_speech, speech_timings  # noqa: E402

CLIP_S = 10.0
CLIP_VARIANTS = 6
LEAD_IN_S, TAIL_S = 0.35, 0.6

_VOCABULARY = (
    "the river empire winter soldiers marched north across frozen plains while hunger followed every "
    "column and the generals argued over maps lanterns burned through long nights villages emptied "
    "before them bridges collapsed under cannon wheels letters home spoke of snow of silence of wolves"
).split()


# --- inputs -------------------------------------------------------------------------------------
def _sentence_text(rng: random.Random, words: int) -> str:
    chosen = [rng.choice(_VOCABULARY) for _ in range(words)]
    comma = rng.randrange(3, max(4, words - 3))
    chosen[comma] += ","
    chosen[0] = chosen[0].capitalize()
    return " ".join(chosen) + "."


def generate_inputs(minutes: float, root: Path, *, width: int, height: int, fps: int) -> list[SceneMedia]:
    """Scenes whose narration fits inside a 10 s clip, until the video reaches `minutes`."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(int(minutes * 1000))
    clips = []
    for v in range(CLIP_VARIANTS):
        path = root / f"clip-{v}.mp4"
        if not path.exists():
            make_clip(path, duration_s=CLIP_S, width=width, height=height, fps=fps, variant=v)
        clips.append(path)
    scenes: list[SceneMedia] = []
    total = 0.0
    while total < minutes * 60:
        i = len(scenes)
        text = " ".join(_sentence_text(rng, rng.randint(7, 10)) for _ in range(2))
        words = speech_timings(text)
        while words[-1].end_s + 0.1 > CLIP_S - LEAD_IN_S - TAIL_S - 0.2:  # keep every scene inside its clip
            words = words[:-1]
        narration = root / f"narration-{i:03d}.wav"
        duration = make_speech(narration, words)
        scene_s = LEAD_IN_S + duration + TAIL_S
        sound = root / f"sound-{i:03d}.wav"
        if not sound.exists():
            make_ambience(sound, duration_s=round(scene_s, 3), seed=i + 1)
        scenes.append(
            SceneMedia(index=i, clip=clips[i % CLIP_VARIANTS], narration=narration, narration_duration_s=duration,
                       words=words, sound=sound, title=f"Part {i + 1}")
        )  # fmt: skip
        total += scene_s
    return scenes


# --- the plain command --------------------------------------------------------------------------
def plain_command(request: AssemblyRequest, out: Path, work: Path) -> list[str]:
    """The shortest honest single ffmpeg command doing the same job, for a lower bound on time."""
    scenes = request.scenes
    durations = [request.lead_in_s + s.narration_duration_s + request.tail_s for s in scenes]
    clip_list = work / "plain-clips.txt"
    clip_list.write_text("".join(f"file '{s.clip}'\noutpoint {d:.3f}\n" for s, d in zip(scenes, durations)))
    sound_list = work / "plain-sounds.txt"
    sound_list.write_text("".join(f"file '{s.sound}'\n" for s in scenes))
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
            "-f", "concat", "-safe", "0", "-i", str(clip_list)]  # fmt: skip
    graph = []
    lead_ms = int(request.lead_in_s * 1000)
    for k, (scene, d) in enumerate(zip(scenes, durations)):
        args += ["-i", str(scene.narration)]
        graph.append(
            f"[{k + 1}:a]aresample=48000,aformat=channel_layouts=mono,adelay={lead_ms}:all=1,apad=whole_dur={d:.3f},"
            f"atrim=duration={d:.3f}[n{k}]"
        )
    bed = len(scenes) + 1
    args += ["-f", "concat", "-safe", "0", "-i", str(sound_list)]
    graph.append("".join(f"[n{k}]" for k in range(len(scenes))) + f"concat=n={len(scenes)}:v=0:a=1[nar]")
    graph.append(f"[{bed}:a]aresample=48000,volume={request.ambience_db}dB[bed]")
    graph.append(f"[nar][bed]amix=inputs=2:normalize=0:duration=first,loudnorm=I={request.target_lufs}:TP=-1.5:LRA=11[a]")
    args += [
        "-filter_complex", ";".join(graph), "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", request.x264_preset, "-crf", str(request.crf), "-g", str(2 * request.fps),
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2",
        "-movflags", "+faststart", str(out),
    ]  # fmt: skip
    return args


# --- measuring ----------------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return kids


def _tree_rss_bytes(root_pid: int) -> int:
    """Sum of resident memory over a process and all its descendants (walked via /proc children)."""
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            continue
        stack.extend(_children(pid))
    return total


def run_measured(cmd: list[str], *, capture: bool = False) -> dict:
    """Run a command, polling its process tree's RSS; returns wall/CPU seconds, peaks and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if capture else None, cwd=REPO)
    peak = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_bytes(proc.pid))
            stop.wait(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stdout = proc.stdout.read().decode() if capture and proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stop.set()
    poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"command failed (exit {proc.returncode}): {' '.join(cmd[:6])} ...")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_tree_rss": peak,
        "maxrss_largest": usage.ru_maxrss * 1024,
        "stdout": stdout,
    }


def run_product_worker(request_json: Path) -> None:
    """Inside the fresh process: assemble, then report timings and getrusage of the ffmpeg children."""
    request = AssemblyRequest.model_validate_json(request_json.read_text())
    t = time.perf_counter()
    result = assemble(request)
    elapsed = time.perf_counter() - t
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "assemble_s": elapsed,
        "timings": result.timings,
        "duration_s": result.duration_s,
        "children_maxrss": children.ru_maxrss * 1024,
        "self_maxrss": me.ru_maxrss * 1024,
        "video": str(result.video),
    }))  # fmt: skip


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def bench(minutes: float, out: Path, args: argparse.Namespace) -> dict:
    root = out / f"{minutes:g}min"
    print(f"\n== {minutes:g}-minute video: generating inputs in {root} ...", flush=True)
    t = time.perf_counter()
    scenes = generate_inputs(minutes, root / "inputs", width=args.width, height=args.height, fps=30)
    print(f"   {len(scenes)} scenes, inputs ready in {time.perf_counter() - t:.0f} s", flush=True)
    request = AssemblyRequest(
        scenes=scenes, out_dir=root / "final", work_dir=root / "work", title=f"Benchmark {minutes:g} min",
        width=args.width, height=args.height, x264_preset=args.preset, jobs=args.jobs,
    )  # fmt: skip
    request_json = root / "request.json"
    request_json.write_text(request.model_dump_json())
    plain_out = root / "plain.mp4"

    best_product: dict | None = None
    best_plain: dict | None = None
    for attempt in range(args.repeat):
        print(f"   run {attempt + 1}/{args.repeat}: plain ffmpeg ...", flush=True)
        plain = run_measured(plain_command(request, plain_out, root))
        print(f"   run {attempt + 1}/{args.repeat}: product ...", flush=True)
        product = run_measured([sys.executable, __file__, "--run-product", str(request_json)], capture=True)
        product.update(json.loads(product["stdout"].strip().splitlines()[-1]))
        if best_plain is None or plain["wall_s"] < best_plain["wall_s"]:
            best_plain = plain
        if best_product is None or product["assemble_s"] < best_product["assemble_s"]:
            best_product = product
    assert best_plain and best_product
    row = {
        "minutes": minutes,
        "scenes": len(scenes),
        "video_s": best_product["duration_s"],
        "plain_duration_s": probe(plain_out).duration_s,
        "product_s": best_product["assemble_s"],
        "product_process_s": best_product["wall_s"],
        "plain_s": best_plain["wall_s"],
        "ratio": best_product["assemble_s"] / best_plain["wall_s"],
        "product_cpu_s": best_product["cpu_s"],
        "plain_cpu_s": best_plain["cpu_s"],
        "product_tree_rss": best_product["peak_tree_rss"],
        "product_largest_child_rss": best_product["children_maxrss"],
        "plain_rss": best_plain["peak_tree_rss"],
        "stages": best_product["timings"],
    }
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return row


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\nAssembly benchmark: {args.width}x{args.height} 30 fps, x264 -preset {args.preset}, "
          f"{os.cpu_count()} CPUs, best of {args.repeat}")  # fmt: skip
    head = (f"{'video':>8} {'scenes':>6} | {'product':>9} {'plain':>9} {'ratio':>6} | {'CPU prod':>9} {'CPU plain':>9} | "
            f"{'peak RSS product tree':>21} {'largest ffmpeg':>14} {'plain RSS':>10}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['video_s'] / 60:>6.2f} m {r['scenes']:>6} | {r['product_s']:>8.1f}s {r['plain_s']:>8.1f}s {r['ratio']:>6.2f} | "
            f"{r['product_cpu_s']:>8.1f}s {r['plain_cpu_s']:>8.1f}s | {_gib(r['product_tree_rss']):>21} "
            f"{_gib(r['product_largest_child_rss']):>14} {_gib(r['plain_rss']):>10}"
        )
    print("\nproduct stages (s):")
    for r in rows:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
        print(f"  {r['minutes']:g} min: {stages}; whole process incl. Python start {r['product_process_s']:.1f}")
    print("\ntargets: ratio (product/plain wall time) <= 1.2; peak RSS of the product tree <= 1.5 GiB at 10 minutes")
    for r in rows:
        ok_ratio = "OK" if r["ratio"] <= 1.2 else "MISSED"
        ok_rss = "OK" if r["product_tree_rss"] <= 1.5 * 2**30 else "MISSED"
        print(f"  {r['minutes']:g} min: ratio {r['ratio']:.2f} {ok_ratio}; peak RSS {_gib(r['product_tree_rss'])} {ok_rss}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0], help="video lengths to benchmark")
    parser.add_argument("--out", type=Path, default=None, help="where inputs and outputs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep generated inputs and outputs")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is reported")
    parser.add_argument("--preset", default="veryfast", help="x264 preset for both the product and the plain command")
    parser.add_argument("--jobs", type=int, default=0, help="scenes the product renders at once (0: auto)")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--run-product", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_product:
        run_product_worker(args.run_product)
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-assembly-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = [bench(m, out, args) for m in args.minutes]
    print_table(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if not args.keep and args.out is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
