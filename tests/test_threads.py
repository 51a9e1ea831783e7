"""The default CPU thread count: its decision logic on made-up machines, and how training records it."""

import json

import pytest
import torch

from gencli.training import threads as T
from gencli.training.threads import CpuSample, ThreadPolicy, choose_threads, others_busy


@pytest.mark.parametrize("cores, busy, expected", [
    (2, 0.0, 2),    # idle: torch's own default, one thread per core
    (2, 0.1, 2),    # an editor and a shell do not cost a thread
    (2, 1.0, 1),    # one CPU-bound process: the other core is ours
    (2, 1.3, 1),
    (2, 2.0, 1),    # everything taken: still one thread, never zero
    (2, 5.0, 1),
    (16, 0.0, 16),
    (16, 3.2, 13),  # others take a fifth of the thirteenth core: still worth a thread
    (16, 3.6, 12),  # two fifths of it: a thread there would hold the other twelve up
    (1, 0.0, 1),
    (1, 0.9, 1),
    (8, -0.2, 8),   # a reading just below zero is noise, not spare capacity
])
def test_one_thread_per_free_core(cores, busy, expected):
    assert choose_threads(cores, busy) == expected


@pytest.mark.parametrize("busy", [0.0, 1.5, 7.0])
def test_a_requested_count_wins_whatever_the_load(busy):
    assert choose_threads(2, busy, requested=4) == 4
    assert choose_threads(8, busy, requested=1, current=3) == 1


def test_during_a_run_the_count_moves_only_when_the_load_clearly_did():
    # running on 2 threads: a little background load keeps them, a competing process takes one
    assert choose_threads(2, 0.45, current=2) == 2
    assert choose_threads(2, 0.7, current=2) == 1
    # on 1 thread: a second one comes back only once the other core is clearly free
    assert choose_threads(2, 0.5, current=1) == 1
    assert choose_threads(2, 0.2, current=1) == 2
    # between the two margins the current count stays, whichever it is
    for busy in (0.35, 0.45):
        assert choose_threads(2, busy, current=1) == 1
        assert choose_threads(2, busy, current=2) == 2
    # a big machine drops only as far as the load says
    assert choose_threads(16, 4.6, current=16) == 11
    assert choose_threads(16, 0.0, current=11) == 16


def test_others_busy_is_the_cores_used_less_this_process_own_cpu_time():
    # 2 cores over 1 s = 200 ticks at 100 Hz; 150 of them busy, 0.5 s of them ours
    before = CpuSample(busy=1000, total=10_000, own=3.0, wall=50.0)
    after = CpuSample(busy=1150, total=10_200, own=3.5, wall=51.0)
    assert others_busy(before, after, cores=2) == pytest.approx(1.0)
    # our own time can exceed what the counters show (their tick is coarse): never below zero
    assert others_busy(before, CpuSample(1010, 10_200, 4.0, 51.0), cores=2) == 0.0
    assert others_busy(before, before, cores=2) is None


def test_a_count_given_by_the_user_is_applied_and_fixed(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    policy = ThreadPolicy.start("cpu")
    assert policy.chosen == 2 and torch.get_num_threads() == 2 and not policy.adaptive
    assert "asked for 2" in policy.record()["reason"]
    assert policy.recheck(step=10) is False


def test_gpu_and_data_parallel_runs_keep_torchs_default(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(1)
    for policy in (ThreadPolicy.start("cuda"), ThreadPolicy.start("cpu", processes=4)):
        assert policy.chosen == 1 and not policy.adaptive


def _fake_counters(monkeypatch, loads):
    """Make /proc/stat report, window after window, ``loads`` cores busy (of 2) by others."""
    state = {"busy": 0, "total": 0, "wall": 0.0, "i": 0}

    def sample(cpus):
        s = CpuSample(state["busy"], state["total"], own=0.0, wall=state["wall"])
        load = loads[min(state["i"], len(loads) - 1)]
        state["i"] += 1
        state["total"] += 200  # 1 s on 2 cores at 100 Hz
        state["busy"] += round(100 * load)
        state["wall"] += 1.0
        return s

    monkeypatch.setattr(T, "sample_cpus", sample)
    monkeypatch.setattr(T, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(T, "cpu_quota", lambda: None)
    monkeypatch.setattr(T.time, "sleep", lambda s: None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_the_policy_follows_a_competing_process_that_comes_and_goes(monkeypatch):
    _fake_counters(monkeypatch, [0.0, 0.1, 1.0, 1.0, 0.05])
    policy = ThreadPolicy.start("cpu")
    assert policy.chosen == 2 and policy.adaptive and policy.reason == "2 cores, 0.0 busy"
    assert policy.recheck(10) is False           # background noise: keep 2
    assert policy.recheck(20) is True and torch.get_num_threads() == 1
    assert policy.recheck(30) is False           # still busy: stay at 1
    assert policy.recheck(40) is True and torch.get_num_threads() == 2
    rec = policy.record()
    assert rec["chosen"] == 2
    assert [(c["step"], c["from"], c["threads"]) for c in rec["changes"]] == [(20, 2, 1), (40, 1, 2)]
    assert rec["changes"][0]["reason"] == "2 cores, 1.0 busy"


def test_a_cgroup_quota_caps_the_cores(monkeypatch):
    _fake_counters(monkeypatch, [0.0])
    monkeypatch.setattr(T, "cpu_quota", lambda: 1.0)
    policy = ThreadPolicy.start("cpu")
    assert policy.chosen == 1 and policy.reason.startswith("1 core,")


def test_under_a_quota_only_the_load_that_eats_into_it_counts():
    # a quota of 4 cores on 16 CPUs: others using 10 CPUs still leave 6 idle ones
    assert T._within(10.0, cores=4, cpus=16) == 0.0
    assert T._within(13.5, cores=4, cpus=16) == 1.5
    assert T._within(20.0, cores=4, cpus=16) == 4.0
    assert T._within(1.2, cores=2, cpus=2) == 1.2  # no quota: all of it
    assert T._within(None, cores=2, cpus=2) == 0.0


def test_training_records_the_choice_in_run_json(tmp_path, monkeypatch):
    from gencli.training.engine import TrainConfig, train

    _fake_counters(monkeypatch, [1.2])
    run = train(TrainConfig(model="vae", data="shapes", steps=4, image_size=16, batch_size=8, log_every=2,
                            overrides={"widths": "8,16"}, quiet=True, out=tmp_path / "run"))
    info = json.loads((run / "run.json").read_text())
    assert info["threads"] == 1
    assert info["thread_choice"] == {"chosen": 1, "reason": "2 cores, 1.2 busy", "adaptive": True}


@pytest.mark.skipif(T.sample_cpus([0]) is None, reason="no /proc/stat here")
def test_this_machines_counters_read_as_a_share_of_its_cores():
    cpus = T.usable_cores()
    before = T.sample_cpus(cpus)
    sum(range(200_000))  # a little work of our own, which must not count as others'
    T.time.sleep(0.2)
    busy = others_busy(before, T.sample_cpus(cpus), len(cpus))
    assert busy is not None and 0.0 <= busy <= len(cpus) + 0.5


def test_run_json_keeps_the_latest_changes_and_counts_them_all(monkeypatch):
    _fake_counters(monkeypatch, [0.0] + [1.0, 0.0] * 40)
    monkeypatch.setattr(T, "KEEP_CHANGES", 5)
    policy = ThreadPolicy.start("cpu")
    for step in range(80):
        policy.recheck(step)
    rec = policy.record()
    assert rec["chosen"] == 2 and rec["change_count"] == 80 and len(rec["changes"]) == 5
    assert rec["changes"][-1]["step"] == 79


@pytest.fixture
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_inference_commands_take_one_thread_per_free_core_too(monkeypatch, keep_torch_threads):
    from gencli.training.threads import inference_device

    _fake_counters(monkeypatch, [1.0])
    assert inference_device("cpu") == "cpu" and torch.get_num_threads() == 1
    _fake_counters(monkeypatch, [0.0])
    assert inference_device("cpu") == "cpu" and torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # gencli --threads 1
    inference_device("cpu")
    assert torch.get_num_threads() == 1


def test_gencli_sample_on_a_busy_machine_runs_on_the_free_core(cli, tmp_path, monkeypatch, keep_torch_threads):
    from gencli.training.engine import TrainConfig, train

    run = train(TrainConfig(model="vae", data="shapes", steps=2, image_size=16, batch_size=8, log_every=2,
                            overrides={"widths": "8,16"}, quiet=True, out=tmp_path / "run", device="cpu"))
    torch.set_num_threads(2)
    _fake_counters(monkeypatch, [1.0])  # another process keeps one of the two cores busy
    result = cli("sample", run, "--n", "4", "--device", "cpu", "--out", tmp_path / "s.png")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "s.png").exists() and torch.get_num_threads() == 1
