# adaptr's two-arm response-adaptive design, timed (called by benchmarks/bench_adaptr.py).
#
#   Rscript benchmarks/adaptr_two_arm.R N_REP BASE_SEED CORES OUT_CSV [Y_A Y_B]
#
# The design: the run_trials() documentation example reduced to its first two arms
# (event probabilities 0.20 and 0.18, analyses after 100, 200, ..., 2000 patients), every
# other setting at setup_trial_binom()'s defaults: undesirable outcome, Beta(1, 1) priors,
# response-adaptive randomisation with soften_power = 1 and no limits, superiority 0.99,
# inferiority 0.01, no equivalence or futility rules, 5,000 posterior draws per analysis.
# Writes one row per trial (extract_results()) to OUT_CSV and prints one JSON line with the
# seconds run_trials() took (its cluster start included) and the versions.
suppressMessages(library(adaptr))
args <- commandArgs(trailingOnly = TRUE)
n_rep <- as.integer(args[1])
base_seed <- as.integer(args[2])
cores <- as.integer(args[3])
out_csv <- args[4]
true_ys <- if (length(args) >= 6) as.numeric(args[5:6]) else c(0.20, 0.18)

spec <- setup_trial_binom(arms = c("A", "B"), true_ys = true_ys, data_looks = 1:20 * 100)
tic <- proc.time()[["elapsed"]]
res <- run_trials(spec, n_rep = n_rep, base_seed = base_seed, cores = cores)
seconds <- proc.time()[["elapsed"]] - tic
ex <- extract_results(res)
utils::write.csv(ex[, c("sim", "final_n", "final_status", "superior_arm")], out_csv, row.names = FALSE)
cat(sprintf(
  '{"seconds": %.3f, "n_rep": %d, "cores": %d, "r": "%s", "adaptr": "%s"}\n',
  seconds, n_rep, cores, paste(R.version$major, R.version$minor, sep = "."),
  as.character(utils::packageVersion("adaptr"))
))
