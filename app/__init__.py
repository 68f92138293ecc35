"""mlops-workbook: the shared package every notebook of the workbook calls."""
