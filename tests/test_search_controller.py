import math

import pytest
import torch

import archgraph.evaluate as evaluate_module
from archgraph import SpaceError, spaces
from archgraph.embody import mlp_layers
from archgraph.evaluate import InProcessEvaluator, TrialEvaluator
from archgraph.search.base import asking
from archgraph.search.controller import ControllerSearch
from archgraph.search.runner import Budget, Runner
from archgraph.search.shared_weights import SharedWeights, layer_pairs
from archgraph.store import MemoryStore, load_checkpoint
from archgraph.trial import Result, TrialState

MLP = spaces.load("mlp")
TINY_OPS = ("dense(8, relu)", "dense(16, tanh)")
TINY = spaces.Space(name="tiny", embodiment="mlp", cells=("layers",), max_vertices=3, ops=TINY_OPS)
TINY_SIZE = 2 + 2 ** 2 + 2 ** 3  # chains of 1 to 3 layers over 2 tokens


def fake_score(trial):
    """A deterministic stand-in for training: wide ReLU layers score high."""
    layers = mlp_layers(trial.arch[0])
    acc = sum(("relu" in op) + ("512" in op) for op in layers) / (2 * len(layers))
    return Result(trial.id, {"val_accuracy": acc}, checkpoint=f"checkpoints/trial-{trial.id}.pt")


def drive(search, n):
    """Ask and tell up to ``n`` trials in order; returns the trials."""
    ask = asking(search)
    trials = []
    while len(trials) < n and (trial := ask()) is not None:
        search.tell(trial, fake_score(trial))
        trials.append(trial)
    return trials


def manual_log_prob(controller, tokens, discount=1.0):
    """Σ_t discount^(T - t) log π(a_t): the LSTM equations written out, in float64."""
    p = {k: v.detach().double() for k, v in controller.named_parameters()}
    hidden = controller.cell.hidden_size
    h, c, previous, total = torch.zeros(hidden, dtype=torch.float64), torch.zeros(hidden, dtype=torch.float64), \
        controller.end, 0.0
    chosen = [*tokens, controller.end]
    for t, token in enumerate(chosen):
        gates = p["cell.weight_ih"] @ p["embed.weight"][previous] + p["cell.bias_ih"] + p["cell.weight_hh"] @ h \
            + p["cell.bias_hh"]
        i, f, g, o = gates.chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        logits = p["out.weight"] @ h + p["out.bias"]
        allowed = [k for k in range(controller.num_tokens) if t < controller.max_layers]
        allowed += [controller.end] if t >= controller.min_layers else []
        log_pi = torch.log_softmax(logits[allowed], 0)[allowed.index(token)]
        total += discount ** (len(tokens) - t) * float(log_pi)
        previous = token
    return total


@pytest.mark.parametrize("space", [TINY, MLP], ids=["tiny", "mlp"])
def test_log_probabilities_equal_the_lstm_written_out(space):
    search = ControllerSearch(space, epochs=1, seed=3, batch=4, hidden=32)
    drive(search, 4)  # one controller update, so the weights are not the initial ones
    controller = search.controller
    sampled = [controller.sample(torch.Generator().manual_seed(s)) for s in range(8)]
    if space is TINY:
        assert len({len(tokens) for tokens, _, _ in sampled}) > 1  # the end token is drawn, not only forced
    for tokens, log_prob, _ in sampled:
        assert float(log_prob) == pytest.approx(manual_log_prob(controller, tokens), abs=1e-5)
        assert search.log_prob([search.tokens[i] for i in tokens]) == pytest.approx(float(log_prob), abs=1e-5)
    batched, _, _ = controller.log_prob([tokens for tokens, _, _ in sampled], discount=0.7)
    expected = [manual_log_prob(controller, tokens, discount=0.7) for tokens, _, _ in sampled]
    assert batched.tolist() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(("accuracy", "direction"), [(0.9, 1), (0.1, -1)])
def test_one_reinforce_step_moves_the_probability_with_the_sign_of_the_advantage(accuracy, direction):
    search = ControllerSearch(MLP, epochs=1, seed=0, batch=1, baseline=0.5, predictor=False, controller_steps=1)
    ask = asking(search)
    trial = ask()
    layers = trial.info["layers"]
    before = search.log_prob(layers)
    search.tell(trial, Result(trial.id, {"val_accuracy": accuracy}))
    assert search.updates == 1
    assert direction * (search.log_prob(layers) - before) > 0


def test_the_predictor_learns_the_observed_accuracies_and_can_skip():
    search = ControllerSearch(TINY, epochs=1, seed=0, batch=6, hidden=32, skip_below=0.99, share_weights=False)
    ask = asking(search)
    first = drive(search, 6)
    assert all("predicted" not in t.info for t in first)  # untrained predictor: no prediction, no skip
    trial = ask()
    assert 0 < trial.info["predicted"] < 1
    assert search.skipped and all(p < 0.99 for _, p in search.skipped)
    proposed = {tuple(t.info["layers"]) for t in [*first, trial]}
    assert not proposed & {layers for layers, _ in search.skipped}


@pytest.mark.parametrize("max_resamples", [100, 0])
def test_no_duplicates_and_a_clean_end_when_the_space_is_exhausted(max_resamples):
    search = ControllerSearch(TINY, epochs=1, seed=1, batch=4, hidden=32, max_resamples=max_resamples)
    ask = asking(search)
    trials = drive(search, 100)
    assert len(trials) == TINY_SIZE == len({tuple(t.info["layers"]) for t in trials})
    assert ask() is None


def test_a_round_waits_for_its_results_and_then_trains_the_controller_on_all_seen():
    search = ControllerSearch(MLP, epochs=2, seed=0, batch=3, hidden=32)
    ask = asking(search)
    round0 = [ask() for _ in range(3)]
    assert ask() is None and search.updates == 0
    for t in reversed(round0):  # the order of tells does not matter
        search.tell(t, fake_score(t))
    assert search.updates == 1 and sorted(search.observed) == [0, 1, 2]
    nxt = ask()
    assert nxt.id == 3 and nxt.info["round"] == 1 and nxt.budget == 2
    assert all(t.info["round"] == 0 and 1 <= len(t.info["layers"]) <= 10 for t in round0)



def test_failed_and_pruned_trials_give_no_reward_and_no_weights_but_end_their_round():
    search = ControllerSearch(TINY, epochs=1, seed=0, batch=3, hidden=8)
    ask = asking(search)
    a, b, c = (ask() for _ in range(3))
    search.tell(a, Result.failure(a.id, "RuntimeError: CUDA out of memory"))
    search.tell(b, Result(b.id, {"val_accuracy": 0.9, "epochs": 1}, state=TrialState.PRUNED))
    search.tell(c, fake_score(c))
    assert list(search.observed) == [c.id] and search.updates == 1  # the round ended; c alone was learnt from
    assert {trial for trial, _ in search.shared.entries.values()} == {c.id}
    nxt = drive(search, TINY_SIZE)
    assert len(nxt) == TINY_SIZE - 3 and all(t.info["layers"] not in (a.info["layers"], b.info["layers"]) for t in nxt)

def test_the_search_is_deterministic_in_its_seed():
    runs = [drive(ControllerSearch(MLP, epochs=1, seed=s, batch=3, hidden=32), 9) for s in (5, 5, 6)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_a_resumed_run_replays_into_the_same_trials():
    def run(store, trials):
        search = ControllerSearch(MLP, epochs=1, seed=2, batch=3, hidden=32)
        Runner(search, fake_score, store=store, evaluator=InProcessEvaluator(), budget=Budget(trials=trials),
               progress=False).run()
        return store.trials()

    store = MemoryStore()
    run(store, 5)  # stops inside the second controller epoch
    assert run(store, 10) == run(MemoryStore(), 10)


def test_weight_sharing_starts_shared_pairs_from_the_stored_tensors(tmp_path, monkeypatch):
    space_file = tmp_path / "tiny.toml"
    space_file.write_text(f'name = "tiny"\nembodiment = "mlp"\ncells = ["layers"]\nmax_vertices = 3\n'
                          f'ops = {list(TINY_OPS)!r}\n'.replace("'", '"'))
    starts, train = {}, evaluate_module.train

    def spy(model, *args, **kwargs):
        starts[kwargs["seed"]] = {k: v.clone() for k, v in model.state_dict().items()}
        return train(model, *args, **kwargs)

    monkeypatch.setattr(evaluate_module, "train", spy)
    objective = TrialEvaluator(str(space_file), "digits", str(tmp_path / "run"), batch_size=256)
    search, store = ControllerSearch(spaces.load(space_file), epochs=1, seed=0, batch=3, hidden=32), MemoryStore()
    results = Runner(search, objective, store=store, evaluator=InProcessEvaluator(), budget=Budget(trials=8),
                     progress=False).run()
    assert len(results) == 8
    shared = 0
    for trial in store.trials():
        start = starts[trial.seed]
        init = trial.task.init_from
        for name, (source, source_name) in init.items():
            saved = load_checkpoint(tmp_path / "run", f"checkpoints/trial-{source}.pt")["model"]
            assert torch.equal(start[name], saved[source_name])
            shared += 1
        with torch.random.fork_rng():
            torch.manual_seed(trial.seed)
            fresh = spaces.load(space_file).compile(trial.arch, input_shape=(1, 8, 8), num_classes=10).state_dict()
        assert all(torch.equal(start[name], fresh[name]) != (name in init) for name in fresh)
    assert shared >= 4


def test_a_search_through_the_runner_with_the_real_evaluator(tmp_path):
    objective = TrialEvaluator("mlp", "digits", str(tmp_path), batch_size=256)
    search = ControllerSearch(MLP, epochs=1, seed=0, batch=2, hidden=32)
    results = Runner(search, objective, store=MemoryStore(), evaluator=InProcessEvaluator(),
                     budget=Budget(trials=3), progress=False).run()
    assert [r.metrics["epochs"] for r in results] == [1, 1, 1] and search.updates == 1
    assert all(0 <= r.score <= 1 and (tmp_path / r.checkpoint).is_file() for r in results)
    assert len(search.shared) > 0


def test_the_store_keys_weights_by_consecutive_weighted_layers():
    pairs = layer_pairs(["dense(64, relu)", "dropout(0.2)", "dropout(0.2)", "dense(32, tanh)"])
    assert [pair for pair, _ in pairs] == [("input", "dense(64, relu)"), ("dense(64, relu)", "dense(32, tanh)"),
                                           ("dense(32, tanh)", "head")]
    assert pairs[1][1] == ["layers.4.0.weight", "layers.4.0.bias"]
    store = SharedWeights()
    store.add(0, ["dense(64, relu)", "dense(32, tanh)"])
    store.add(1, ["dense(64, relu)"])  # the later trial holds the fresher weights of a pair
    assert store.init_from(["dense(64, relu)", "dense(32, tanh)"]) == {
        "layers.1.0.weight": [1, "layers.1.0.weight"], "layers.1.0.bias": [1, "layers.1.0.bias"],
        "layers.2.0.weight": [0, "layers.2.0.weight"], "layers.2.0.bias": [0, "layers.2.0.bias"],
        "head.weight": [0, "head.weight"], "head.bias": [0, "head.bias"]}


FIVE = spaces.Space(name="five", embodiment="mlp", cells=("layers",), min_vertices=2, max_vertices=5,
                    ops=("dense(8, relu)", "dense(16, tanh)", "dropout(0.2)"))


@pytest.mark.parametrize(("space", "max_layers"), [(MLP, None), (MLP, 4), (FIVE, None)], ids=["mlp", "mlp-4", "five"])
def test_a_fresh_controller_with_the_uniform_prior_samples_as_random_search(space, max_layers):
    """π(sequence of d layers) = 1 / (#depths · tokens^d): a uniform depth, then uniform tokens."""
    search = ControllerSearch(space, epochs=1, seed=4, hidden=16, uniform_prior=True, max_layers=max_layers)
    low, high, n = space.min_vertices, max_layers or space.max_vertices, len(space.ops)
    draw = torch.Generator().manual_seed(0)
    for depth in range(low, high + 1):
        for _ in range(3):
            tokens = torch.randint(n, (depth,), generator=draw).tolist()
            expected = -math.log(high - low + 1) - depth * math.log(n)
            assert search.log_prob([space.ops[i] for i in tokens]) == pytest.approx(expected, abs=1e-5)


def test_sampled_depths_follow_the_prior_and_without_it_most_are_the_deepest():
    depths = {}
    for prior, draws in ((True, 1000), (False, 100)):
        controller = ControllerSearch(MLP, epochs=1, seed=1, hidden=16, uniform_prior=prior).controller
        generator = torch.Generator().manual_seed(2)
        depths[prior] = torch.bincount(torch.tensor([len(controller.sample(generator)[0]) for _ in range(draws)]),
                                       minlength=11)[1:] / draws
    assert depths[True].sub(0.1).abs().max() < 4 * math.sqrt(0.1 * 0.9 / 1000)  # uniform over 1..10
    assert depths[False][-1] > 0.5  # the plain LSTM stops with probability ~1/30 per step


def test_the_prior_leaves_the_controllers_generator_where_it_was():
    states = [ControllerSearch(MLP, epochs=1, seed=7, hidden=16, uniform_prior=prior).generator.get_state()
              for prior in (False, True)]
    assert torch.equal(*states)


def test_the_entropy_bonus_gradient_equals_the_hand_computation():
    """At equal accuracies (no advantage) and without the predictor the loss is -β/M Σ_i Σ_t H_t;
    with the prior the fresh π is known at each step, so ∂loss/∂(output bias) is, by hand,
    -β/M Σ_i Σ_t ∂H_t/∂z with ∂H/∂z_j = -p_j (log p_j + H) over the allowed tokens."""
    space, beta = FIVE, 0.3
    sequences = [(2, 1), (1, 1, 0), (0, 2, 2, 1, 0)]  # steps 0, 1: the end is not allowed; step 5: it is forced
    n, low, high = len(space.ops), space.min_vertices, space.max_vertices
    expected_grad, expected_entropy = torch.zeros(n + 1, dtype=torch.float64), []
    for tokens in sequences:
        total = 0.0
        for t in range(len(tokens) + 1):
            p = torch.zeros(n + 1, dtype=torch.float64)
            stop = 0.0 if t < low else 1 / (high - t + 1)
            p[:n] = (1 - stop) / n if t < high else 0.0
            p[n] = stop
            allowed = p > 0
            h = -float((p[allowed] * p[allowed].log()).sum())
            dh = torch.zeros(n + 1, dtype=torch.float64)
            dh[allowed] = -p[allowed] * (p[allowed].log() + h)
            expected_grad -= beta / len(sequences) * dh
            total += h
        expected_entropy.append(total)
    accuracy = torch.full((len(sequences),), 0.8)
    grads = {}
    for weight in (beta, 0.0):
        search = ControllerSearch(space, epochs=1, seed=0, hidden=16, uniform_prior=True, predictor=False,
                                  entropy_weight=weight)
        _, entropy, _ = search.controller.log_prob(sequences)
        assert entropy.tolist() == pytest.approx(expected_entropy, abs=1e-5)
        search.loss(sequences, accuracy).backward()
        grads[weight] = search.controller.out.bias.grad
    assert grads[beta].tolist() == pytest.approx(expected_grad.tolist(), abs=1e-6)
    assert not grads[0.0].any()  # the bonus alone moves it
    assert grads[beta][n] > 0  # these stop more often than 1/(n+1): the bonus lowers the end token's logit


def test_the_controller_needs_an_mlp_space_and_sane_settings():
    with pytest.raises(SpaceError, match="MLP layer tokens"):
        ControllerSearch(spaces.load("fade"), epochs=1)
    with pytest.raises(ValueError, match="max_layers must lie in 1..10"):
        ControllerSearch(MLP, epochs=1, max_layers=11)
    with pytest.raises(ValueError, match="entropy_weight >= 0"):
        ControllerSearch(MLP, epochs=1, entropy_weight=-0.1)
    with pytest.raises(ValueError, match="baseline"):
        ControllerSearch(MLP, epochs=1, baseline="median")
    assert repr(ControllerSearch(MLP, epochs=1)) == "ControllerSearch('mlp', epochs=1, seed=0, batch=10, max_layers=10)"
    assert math.isfinite(ControllerSearch(MLP, epochs=1).log_prob(["dropout(0.2)"]))
