"""scripts/mutation-score as a package of small stages: mutants (list,
sample, the equivalents a person marked), build (each mutant's labtest),
judge (its runs in three modes), report (the table and the survivors),
cli (the entry point)."""
