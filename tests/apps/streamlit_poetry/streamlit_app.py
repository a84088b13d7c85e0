import six
import streamlit as st

st.title("Poetry streamlit")
st.write(f"six {six.__version__} came from poetry")
