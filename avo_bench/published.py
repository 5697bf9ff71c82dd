"""Published reference values that the benchmark's reproductions and tests compare against.

One place for numbers copied from papers' published results, each with its exact source, so
that scripts and tests cannot drift apart.

References:
    Lueckmann, Boelts, Greenberg, Goncalves, Macke, "Benchmarking Simulation-Based Inference",
    AISTATS 2021, https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import functools

__all__ = [
    "SBIBM_C2ST",
    "SBIBM_C2ST_SOURCES",
    "SBIBM_GAUSSIAN_LINEAR_C2ST",
    "SBIBM_LABELS",
    "SBIBM_OBSERVATIONS_FILE",
    "SBIBM_SOURCE",
    "sbibm_published",
    "sbibm_published_observations",
]

# Published C2ST on sbibm's gaussian_linear: mean, sample sd (ddof 1) and number of observations
# (1-10) per (our method name, budget). Source: github.com/sbi-benchmark/results at commit
# 2a49a5797d7ac6b1c8873f8ee01671713616656b, files benchmarking_sbi/results/
# supplement_rf_abc.csv (rows REJ-ABC, SMC-ABC, RF-ABC), supplement_hyperparameters_snpe.csv
# (NPE-NSF), supplement_hyperparameters_snle.csv (NLE-MAF), supplement_hyperparameters_snre.csv
# (NRE-RES), column C2ST. The main paper's labels follow main_paper() in
# benchmarking_sbi/results.py at that commit: REJ-ABC = "REJ-ABC 100 KDE", SMC-ABC =
# "SMC-ABC (ours) 100 .5 .2 KDE" (10^3, 10^4; "1000 .5 .2 KDE" at 10^5), NPE = NPE-NSF,
# NLE = NLE-MAF, NRE = NRE-RES; RF-ABC (abcranger) appears in the supplement only.
SBIBM_SOURCE = (
    "github.com/sbi-benchmark/results @ 2a49a5797d7ac6b1c8873f8ee01671713616656b, "
    "benchmarking_sbi/results/{supplement_rf_abc, supplement_hyperparameters_snpe, "
    "supplement_hyperparameters_snle, supplement_hyperparameters_snre}.csv, column C2ST, "
    "observations 1-10; labels mapped by main_paper() in benchmarking_sbi/results.py"
)
SBIBM_LABELS = {
    "rejection_abc": "REJ-ABC (REJ-ABC 100 KDE)",
    "smc_abc": "SMC-ABC (SMC-ABC (ours) 100 .5 .2 KDE)",
    "npe": "NPE (NPE-NSF)",
    "nle": "NLE (NLE-MAF)",
    "nre": "NRE (NRE-RES)",
    "abc_rf": "RF-ABC (abcranger, supplement)",
}
SBIBM_GAUSSIAN_LINEAR_C2ST = {
    ("rejection_abc", 1_000): (0.9135, 0.0262, 10),
    ("rejection_abc", 10_000): (0.8579, 0.0360, 10),
    ("rejection_abc", 100_000): (0.8020, 0.0233, 10),
    ("smc_abc", 1_000): (0.9215, 0.0303, 10),
    ("smc_abc", 10_000): (0.8287, 0.0489, 10),
    ("smc_abc", 100_000): (0.7262, 0.0318, 10),
    ("npe", 1_000): (0.6945, 0.0438, 10),
    ("npe", 10_000): (0.5522, 0.0316, 10),
    ("npe", 100_000): (0.5060, 0.0041, 10),
    ("nle", 1_000): (0.6504, 0.0842, 10),
    ("nle", 10_000): (0.5548, 0.0342, 10),
    ("nle", 100_000): (0.5147, 0.0092, 10),
    ("nre", 1_000): (0.6720, 0.0455, 10),
    ("nre", 10_000): (0.5603, 0.0197, 10),
    ("nre", 100_000): (0.5363, 0.0313, 10),
    ("abc_rf", 1_000): (0.6522, 0.0539, 10),
    ("abc_rf", 10_000): (0.5754, 0.0234, 10),
    ("abc_rf", 100_000): (0.5391, 0.0130, 10),
}

# Published C2ST on all ten sbibm tasks, per (task, our method name, budget): mean, sample sd
# (ddof 1) and count over observations 1-10 (10 for every entry). Computed with pandas
# (groupby task, algorithm, num_simulations; column C2ST) from github.com/sbi-benchmark/results:
# - benchmarking_sbi/results/main_paper.csv at commit 2a49a5797d7ac6b1c8873f8ee01671713616656b
#   (REJ-ABC, SMC-ABC, NPE, NLE, NRE, SNPE, SNLE, SNRE: the main paper's algorithms, labels mapped
#   by main_paper() in benchmarking_sbi/results.py; identical in the newest commit 741183c);
# - benchmarking_sbi/results/supplement_rf_abc.csv at that commit (RF-ABC; its REJ-ABC and
#   SMC-ABC rows equal main_paper.csv's);
# - gaussian_mixture: gaussian_mixture_rerun/results/gaussian_mixture_rerun.csv at commit
#   741183cdece7077453efbedac0fad7e74afa10e5 (sbibm 1.1.0 fixed the task's simulator, the
#   definition simulators/gaussian_mixture.py follows; RF-ABC was not rerun, so it has no entry).
# Columns: task, method, then mean and sd at 10^3, 10^4 and 10^5 simulations.
_SBIBM_TABLE = """
gaussian_linear         rejection_abc 0.9135 0.0262 0.8579 0.0360 0.8020 0.0233
gaussian_linear         smc_abc       0.9215 0.0303 0.8287 0.0489 0.7262 0.0318
gaussian_linear         npe           0.6945 0.0438 0.5522 0.0316 0.5060 0.0041
gaussian_linear         nle           0.6504 0.0842 0.5548 0.0342 0.5147 0.0092
gaussian_linear         nre           0.6720 0.0455 0.5603 0.0197 0.5363 0.0313
gaussian_linear         snpe          0.6523 0.0488 0.5441 0.0144 0.5072 0.0041
gaussian_linear         snle          0.6281 0.0308 0.5476 0.0067 0.5186 0.0075
gaussian_linear         snre          0.6701 0.0357 0.5358 0.0059 0.5149 0.0043
gaussian_linear         abc_rf        0.6522 0.0539 0.5754 0.0234 0.5391 0.0130
gaussian_linear_uniform rejection_abc 0.9766 0.0098 0.9485 0.0177 0.9091 0.0282
gaussian_linear_uniform smc_abc       0.9680 0.0152 0.9276 0.0563 0.7940 0.0406
gaussian_linear_uniform npe           0.6963 0.0456 0.5534 0.0157 0.5093 0.0054
gaussian_linear_uniform nle           0.7228 0.0393 0.5481 0.0181 0.5065 0.0044
gaussian_linear_uniform nre           0.7880 0.0573 0.7061 0.0280 0.6312 0.0337
gaussian_linear_uniform snpe          0.6314 0.0229 0.5272 0.0114 0.5066 0.0053
gaussian_linear_uniform snle          0.6574 0.0279 0.5524 0.0117 0.5091 0.0047
gaussian_linear_uniform snre          0.6811 0.0265 0.6056 0.0188 0.5360 0.0073
gaussian_linear_uniform abc_rf        0.6653 0.0430 0.5742 0.0288 0.5410 0.0189
slcp                    rejection_abc 0.9822 0.0073 0.9734 0.0120 0.9615 0.0198
slcp                    smc_abc       0.9816 0.0091 0.9689 0.0114 0.9633 0.0181
slcp                    npe           0.9752 0.0125 0.9006 0.0474 0.8315 0.0522
slcp                    nle           0.9456 0.0330 0.7710 0.0705 0.6988 0.0693
slcp                    nre           0.9717 0.0161 0.9467 0.0221 0.9190 0.0391
slcp                    snpe          0.9652 0.0194 0.8445 0.0451 0.6656 0.0608
slcp                    snle          0.9206 0.0251 0.7131 0.0524 0.5781 0.0293
slcp                    snre          0.9682 0.0158 0.9172 0.0301 0.7208 0.0583
slcp                    abc_rf        0.9547 0.0234 0.9298 0.0383 0.9121 0.0420
slcp_distractors        rejection_abc 0.9881 0.0055 0.9873 0.0057 0.9868 0.0057
slcp_distractors        smc_abc       0.9862 0.0066 0.9875 0.0062 0.9852 0.0061
slcp_distractors        npe           0.9816 0.0104 0.9703 0.0148 0.8631 0.0448
slcp_distractors        nle           0.9868 0.0170 0.9607 0.0446 0.9052 0.0387
slcp_distractors        nre           0.9801 0.0119 0.9680 0.0205 0.9527 0.0468
slcp_distractors        snpe          0.9785 0.0149 0.9306 0.0431 0.7779 0.0758
slcp_distractors        snle          0.9916 0.0105 0.9489 0.0366 0.8826 0.0438
slcp_distractors        snre          0.9808 0.0087 0.9736 0.0157 0.7662 0.0512
slcp_distractors        abc_rf        0.9704 0.0163 0.9621 0.0219 0.9473 0.0288
bernoulli_glm           rejection_abc 0.9935 0.0027 0.9761 0.0086 0.9409 0.0124
bernoulli_glm           smc_abc       0.9910 0.0035 0.9813 0.0352 0.8178 0.0261
bernoulli_glm           npe           0.8630 0.0378 0.6783 0.0424 0.5588 0.0206
bernoulli_glm           nle           0.7403 0.0375 0.6047 0.0249 0.5449 0.0146
bernoulli_glm           nre           0.8992 0.0302 0.8117 0.0731 0.7508 0.0544
bernoulli_glm           snpe          0.8545 0.0783 0.6143 0.0446 0.5245 0.0065
bernoulli_glm           snle          0.6340 0.0503 0.5535 0.0189 0.5218 0.0126
bernoulli_glm           snre          0.7176 0.0808 0.5838 0.0258 0.5291 0.0136
bernoulli_glm           abc_rf        0.9524 0.0143 0.9078 0.0252 0.8724 0.0327
bernoulli_glm_raw       rejection_abc 0.9948 0.0020 0.9839 0.0084 0.9665 0.0207
bernoulli_glm_raw       smc_abc       0.9901 0.0049 0.9585 0.0451 0.9434 0.0359
bernoulli_glm_raw       npe           0.8996 0.0305 0.7648 0.0383 0.6074 0.0287
bernoulli_glm_raw       nle           0.8704 0.0514 0.9393 0.0380 0.9508 0.0277
bernoulli_glm_raw       nre           0.9149 0.0495 0.8343 0.0525 0.7770 0.0550
bernoulli_glm_raw       snpe          0.9059 0.0583 0.6576 0.0406 0.6066 0.1272
bernoulli_glm_raw       snle          0.9901 0.0205 0.9733 0.0189 0.9869 0.0102
bernoulli_glm_raw       snre          0.8801 0.0793 0.6746 0.0627 0.5525 0.0147
bernoulli_glm_raw       abc_rf        0.9611 0.0122 0.9171 0.0189 0.8755 0.0143
gaussian_mixture        rejection_abc 0.8604 0.0344 0.7814 0.0430 0.7572 0.0371
gaussian_mixture        smc_abc       0.7912 0.0441 0.7219 0.0317 0.6730 0.0130
gaussian_mixture        npe           0.7161 0.0373 0.6153 0.0428 0.5478 0.0193
gaussian_mixture        nle           0.7401 0.0287 0.7234 0.0707 0.6897 0.0644
gaussian_mixture        nre           0.7772 0.0317 0.7482 0.0268 0.7348 0.0199
gaussian_mixture        snpe          0.6689 0.0336 0.5511 0.0185 0.5363 0.0193
gaussian_mixture        snle          0.7061 0.0395 0.6854 0.0603 0.6463 0.1023
gaussian_mixture        snre          0.6726 0.0487 0.5782 0.0411 0.5310 0.0177
two_moons               rejection_abc 0.9600 0.0137 0.8466 0.0354 0.6643 0.0404
two_moons               smc_abc       0.9222 0.0197 0.7068 0.0417 0.6627 0.0485
two_moons               npe           0.7251 0.0447 0.6064 0.0394 0.5417 0.0239
two_moons               nle           0.7731 0.0908 0.7132 0.0879 0.6682 0.0945
two_moons               nre           0.8217 0.0369 0.7614 0.0295 0.6292 0.0556
two_moons               snpe          0.6434 0.0611 0.5539 0.0237 0.5298 0.0257
two_moons               snle          0.6571 0.0414 0.5711 0.0500 0.5820 0.1216
two_moons               snre          0.6512 0.0268 0.5821 0.0349 0.5630 0.0316
two_moons               abc_rf        0.9681 0.0124 0.9440 0.0185 0.9224 0.0227
sir                     rejection_abc 0.9637 0.0197 0.8382 0.0508 0.7130 0.0378
sir                     smc_abc       0.9213 0.0320 0.6262 0.0273 0.6128 0.0336
sir                     npe           0.8151 0.1175 0.6796 0.1354 0.5848 0.0593
sir                     nle           0.7610 0.0976 0.7483 0.0909 0.7296 0.0969
sir                     nre           0.8409 0.0634 0.7704 0.0855 0.6899 0.0947
sir                     snpe          0.6375 0.0992 0.5609 0.0276 0.5748 0.0773
sir                     snle          0.7455 0.0988 0.7446 0.1183 0.6500 0.0413
sir                     snre          0.6365 0.0696 0.6462 0.0905 0.5472 0.0262
sir                     abc_rf        0.9065 0.0323 0.8133 0.0308 0.7479 0.0570
lotka_volterra          rejection_abc 0.9998 0.0001 0.9995 0.0006 0.9982 0.0017
lotka_volterra          smc_abc       0.9999 0.0001 0.9960 0.0030 0.9952 0.0032
lotka_volterra          npe           0.9994 0.0007 0.9968 0.0027 0.9808 0.0148
lotka_volterra          nle           0.9940 0.0057 0.9563 0.0388 0.9518 0.0401
lotka_volterra          nre           0.9996 0.0002 0.9976 0.0042 0.9964 0.0033
lotka_volterra          snpe          0.9902 0.0092 0.9533 0.0363 0.9281 0.0796
lotka_volterra          snle          0.9090 0.0463 0.7377 0.0940 0.6951 0.1025
lotka_volterra          snre          0.9713 0.0243 0.8484 0.0588 0.8306 0.0859
lotka_volterra          abc_rf        0.9993 0.0006 0.9985 0.0010 0.9958 0.0024
"""
_BUDGETS = (1_000, 10_000, 100_000)
_MAIN = ("github.com/sbi-benchmark/results @ 2a49a5797d7ac6b1c8873f8ee01671713616656b, "
         "benchmarking_sbi/results/main_paper.csv, column C2ST, observations 1-10")  # fmt: skip
_RERUN = ("github.com/sbi-benchmark/results @ 741183cdece7077453efbedac0fad7e74afa10e5, "
          "gaussian_mixture_rerun/results/gaussian_mixture_rerun.csv (sbibm 1.1.0), column "
          "C2ST, observations 1-10")  # fmt: skip
_RF = ("github.com/sbi-benchmark/results @ 2a49a5797d7ac6b1c8873f8ee01671713616656b, "
       "benchmarking_sbi/results/supplement_rf_abc.csv, column C2ST, observations 1-10")  # fmt: skip


def _parse(table: str) -> dict[tuple[str, str, int], tuple[float, float, int]]:
    out = {}
    for line in table.strip().splitlines():
        task, method, *values = line.split()
        for k, budget in enumerate(_BUDGETS):
            out[task, method, budget] = (float(values[2 * k]), float(values[2 * k + 1]), 10)
    return out


#: sbibm's published C2ST: ``(task, method, budget) -> (mean, sd, count)`` over observations.
SBIBM_C2ST: dict[tuple[str, str, int], tuple[float, float, int]] = _parse(_SBIBM_TABLE)
#: Where each entry of :data:`SBIBM_C2ST` comes from: ``(task, method) -> source``.
SBIBM_C2ST_SOURCES: dict[tuple[str, str], str] = {
    (task, method): _RF if method == "abc_rf" else _RERUN if task == "gaussian_mixture" else _MAIN
    for task, method, _ in SBIBM_C2ST
}
SBIBM_LABELS.update(snpe="SNPE (SNPE-NSF)", snle="SNLE (SNLE-MAF)", snre="SNRE (SNRE-RES)")


def sbibm_published(task: str, method: str, budget: int) -> tuple[float, float, int] | None:
    """sbibm's published C2ST ``(mean, sd, count)`` of ``method`` on ``task`` at ``budget``
    simulations, or ``None`` where sbibm reports none (another task, method or budget)."""
    return SBIBM_C2ST.get((task, method, budget))


#: sbibm's C2ST per observation (columns ``task, method, budget, observation, c2st, source``):
#: the rows behind :data:`SBIBM_C2ST` (whose means and sample sds they reproduce to 1e-4, checked
#: in a test), from the same files at the same commits: ``main_paper.csv`` (``source``
#: main_paper; algorithm labels REJ-ABC, SMC-ABC, NPE, NLE, NRE, SNPE, SNLE, SNRE),
#: ``supplement_rf_abc.csv`` (RF-ABC) and, for ``gaussian_mixture``, the rerun with sbibm 1.1.0
#: (``gaussian_mixture_rerun.csv``). A run on a few observations compares with sbibm's values on
#: the same observations, not only with the mean over all ten.
SBIBM_OBSERVATIONS_FILE = "data/sbibm_c2st_observations.csv.gz"


@functools.cache
def _observations() -> dict[tuple[str, str, int], dict[int, float]]:
    import gzip
    from importlib import resources

    table: dict[tuple[str, str, int], dict[int, float]] = {}
    with resources.files(__package__).joinpath(SBIBM_OBSERVATIONS_FILE).open("rb") as raw:
        lines = gzip.decompress(raw.read()).decode().splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=True))
        key = (row["task"], row["method"], int(row["budget"]))
        table.setdefault(key, {})[int(row["observation"])] = float(row["c2st"])
    return table


def sbibm_published_observations(task: str, method: str, budget: int) -> dict[int, float]:
    """sbibm's published C2ST of ``method`` on ``task`` at ``budget`` simulations per observation
    number (1-10); empty where sbibm reports none."""
    return dict(_observations().get((task, method, int(budget)), {}))
