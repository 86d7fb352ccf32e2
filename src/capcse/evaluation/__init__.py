"""capcse.evaluation"""
