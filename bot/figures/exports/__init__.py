"""Exports of evaluations and work orders (issue 8): the columns and their masking, and two streaming
writers (CSV, XLSX) that hold one batch of rows at a time, whatever the size of the export."""
