"""Published reference values that the benchmark's reproductions and tests compare against.

One place for numbers copied from papers' published results, each with its exact source, so
that scripts and tests cannot drift apart.

References:
    Lueckmann, Boelts, Greenberg, Goncalves, Macke, "Benchmarking Simulation-Based Inference",
    AISTATS 2021, https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

__all__ = ["SBIBM_GAUSSIAN_LINEAR_C2ST", "SBIBM_LABELS", "SBIBM_SOURCE"]

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
