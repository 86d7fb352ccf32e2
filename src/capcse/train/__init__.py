"""capcse.train"""
