"""The grading tool's stages (scripts/grade is the entry point):

- collect: which submissions, from files, lab trees or git repositories;
- build: the stand-in once, then each submission's crate on the lab's glue;
- sandbox: every build and run of student code in a bubblewrap sandbox;
- run: labtest in virtual and real time, each run classified;
- rules: the handout's DO NOT rules, from server.rs's syntax tree;
- report: the table, report.txt, summary.json, grades.csv.
"""
