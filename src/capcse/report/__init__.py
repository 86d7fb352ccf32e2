"""capcse.report"""
