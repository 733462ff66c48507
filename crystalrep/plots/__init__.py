"""Plotly figure builders and display tables, one module per page family; pages only render them.

No Streamlit here, so the builders are tested directly (AppTest cannot see inside plotly charts).
"""
